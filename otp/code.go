// Package otp holds the cryptography of one-time codes: drawing them,
// binding them to their request with a MAC, sealing the text that carries
// them while it waits for delivery, and rendering that text from an
// account's template.
package otp

import (
	"fmt"
	"io"
)

// Code lengths an account may choose.
const (
	MinLength = 4
	MaxLength = 10
)

// Draw returns a code of length decimal digits read from r, which is
// crypto/rand.Reader in production. Every code is equally likely: each digit
// comes from one byte, and bytes 250 to 255 are thrown away, since keeping
// them (byte % 10) would make 0 to 5 more likely than 6 to 9.
func Draw(r io.Reader, length int) (string, error) {
	if length < MinLength || length > MaxLength {
		return "", fmt.Errorf("otp: code length %d is outside %d to %d", length, MinLength, MaxLength)
	}
	code := make([]byte, 0, length)
	buf := make([]byte, length)
	for {
		// Read only what is still missing, so that a code consumes exactly
		// the bytes it is made of plus the ones thrown away.
		b := buf[:length-len(code)]
		if _, err := io.ReadFull(r, b); err != nil {
			return "", fmt.Errorf("otp: reading randomness: %w", err)
		}
		for _, c := range b {
			if c < 250 {
				code = append(code, '0'+c%10)
			}
		}
		if len(code) == length {
			clear(buf)
			return string(code), nil
		}
	}
}
