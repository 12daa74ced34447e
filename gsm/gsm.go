// Package gsm sizes, encodes and splits SMS texts. A text goes out in the
// GSM 03.38 7-bit alphabet when every character has a place in it, since
// that fits 160 characters in one SMS, and in UCS-2 otherwise (70).
//
// GSM-7 is written unpacked, one septet per octet, as SMPP SMSCs expect with
// data_coding 0.
//
// That is what the package's functions do, and CharsetGSM's methods. Some
// SMSCs read data_coding 0 as ASCII or Latin-1 instead: for them the methods
// of CharsetASCII and CharsetLatin1 write a text those charsets can hold in
// their octets (sized as it will be sent: 160 septets or 140 octets in one
// SMS), and any other in UCS-2.
package gsm

import (
	"errors"
	"fmt"
	"unicode/utf16"
)

// Coding is a text's character set, valued as SMPP's data_coding.
type Coding int

// The two codings a text is sent in.
const (
	GSM7 Coding = 0 // GSM 03.38 default alphabet, SMSC default (ASCII or Latin-1 under those Charsets)
	UCS2 Coding = 8 // UCS-2 (UTF-16 big-endian, with surrogate pairs)
)

// String names the coding for logs and test failures.
func (c Coding) String() string {
	switch c {
	case GSM7:
		return "GSM7"
	case UCS2:
		return "UCS2"
	}
	return fmt.Sprintf("Coding(%d)", int(c))
}

// Capacities of one SMS, in septets for GSM-7 and UTF-16 units for UCS-2.
// A part of a long text gives up 6 octets to its concatenation header
// (8-bit reference), which leaves 153 septets or 67 units.
const (
	GSM7Single = 160
	GSM7Part   = 153
	UCS2Single = 70
	UCS2Part   = 67
)

// Analyze returns the coding text is sent in and its length in that
// coding's units: septets for GSM-7 (an extension character such as '€'
// counts two), UTF-16 units for UCS-2 (a character outside the BMP, such as
// an emoji, counts two).
func Analyze(text string) (Coding, int) {
	n := 0
	for _, r := range text {
		if _, ok := basicSeptet[r]; ok {
			n++
		} else if _, ok := extensionSeptet[r]; ok {
			n += 2
		} else {
			return UCS2, ucs2Len(text)
		}
	}
	return GSM7, n
}

func ucs2Len(text string) int {
	n := 0
	for _, r := range text {
		// Ranging over a string never yields a surrogate or an invalid
		// rune (bad UTF-8 becomes U+FFFD), so RuneLen is 1 or 2 here.
		n += utf16.RuneLen(r)
	}
	return n
}

// Segments returns how many SMS text takes: one if it fits a single SMS,
// else as many parts as Split makes.
func Segments(text string) int {
	c, b := Encode(text)
	n := 0
	for start := 0; ; n++ {
		end := cut(c, b, start)
		if end == len(b) {
			return n + 1
		}
		start = end
	}
}

// Encode returns text in the coding Analyze picks: GSM-7 unpacked, one
// septet per octet with ESC (0x1B) before each extension character, or
// UCS-2 big-endian.
func Encode(text string) (Coding, []byte) {
	c, n := Analyze(text)
	if c == GSM7 {
		b := make([]byte, 0, n)
		for _, r := range text {
			if s, ok := basicSeptet[r]; ok {
				b = append(b, s)
			} else {
				b = append(b, esc, extensionSeptet[r])
			}
		}
		return GSM7, b
	}
	return UCS2, appendUCS2(make([]byte, 0, 2*n), text)
}

// appendUCS2 appends text to b in UCS-2 big-endian, a character outside the
// BMP as a surrogate pair.
func appendUCS2(b []byte, text string) []byte {
	var units [2]uint16
	for _, r := range text {
		for _, u := range utf16.AppendRune(units[:0], r) {
			b = append(b, byte(u>>8), byte(u))
		}
	}
	return b
}

// Split returns text encoded as Encode does, cut into the parts of a
// concatenated SMS: one part when it fits a single SMS, else parts of at
// most 153 septets (GSM-7) or 134 octets (UCS-2, 67 units). A cut never
// falls inside an ESC pair or a surrogate pair, since a handset would show
// garbage on both sides of it. The caller adds the concatenation header.
func Split(text string) (Coding, [][]byte) {
	c, b := Encode(text)
	var parts [][]byte
	for start := 0; ; {
		end := cut(c, b, start)
		// The capacity stops at end, so appending to one part cannot
		// overwrite the next.
		parts = append(parts, b[start:end:end])
		if end == len(b) {
			return c, parts
		}
		start = end
	}
}

// cut returns where the part of b that begins at start ends.
func cut(c Coding, b []byte, start int) int {
	single, part := GSM7Single, GSM7Part
	if c == UCS2 {
		single, part = 2*UCS2Single, 2*UCS2Part
	}
	if len(b) <= single {
		return len(b)
	}
	end := start + part
	if end >= len(b) {
		return len(b)
	}
	if c == GSM7 && b[end-1] == esc {
		// Every 0x1B in an encoded text starts an ESC pair: no character
		// of either table is encoded as 0x1B itself.
		end--
	}
	if u := uint16(b[end-2])<<8 | uint16(b[end-1]); c == UCS2 && u >= 0xD800 && u <= 0xDBFF {
		end -= 2 // a high surrogate: its low half would start the next part
	}
	return end
}

// Errors of Decode.
var (
	ErrCoding  = errors.New("gsm: unknown coding")
	ErrInvalid = errors.New("gsm: invalid encoded text")
)

// Decode is the inverse of Encode: it turns unpacked GSM-7 or UCS-2
// big-endian octets back into text. It refuses (ErrInvalid) what Encode
// never writes: octets above 0x7F, an ESC not followed by an extension
// character, an odd number of UCS-2 octets, and unpaired surrogates.
func Decode(c Coding, b []byte) (string, error) {
	switch c {
	case GSM7:
		return decodeGSM7(b)
	case UCS2:
		return decodeUCS2(b)
	}
	return "", fmt.Errorf("%w %d", ErrCoding, int(c))
}

func decodeGSM7(b []byte) (string, error) {
	out := make([]rune, 0, len(b))
	for i := 0; i < len(b); i++ {
		s := b[i]
		switch {
		case s > 0x7F:
			return "", fmt.Errorf("%w: octet %d is 0x%02X, not a septet", ErrInvalid, i, s)
		case s == esc:
			i++
			if i == len(b) {
				return "", fmt.Errorf("%w: ESC at the end", ErrInvalid)
			}
			r, ok := extension[b[i]]
			if !ok {
				return "", fmt.Errorf("%w: ESC 0x%02X is not an extension character", ErrInvalid, b[i])
			}
			out = append(out, r)
		default:
			out = append(out, basic[s])
		}
	}
	return string(out), nil
}

func decodeUCS2(b []byte) (string, error) {
	if len(b)%2 != 0 {
		return "", fmt.Errorf("%w: odd number of UCS-2 octets (%d)", ErrInvalid, len(b))
	}
	out := make([]rune, 0, len(b)/2)
	for i := 0; i < len(b); i += 2 {
		u := rune(b[i])<<8 | rune(b[i+1])
		if !utf16.IsSurrogate(u) {
			out = append(out, u)
			continue
		}
		if i+3 < len(b) {
			if r := utf16.DecodeRune(u, rune(b[i+2])<<8|rune(b[i+3])); r != '\uFFFD' {
				out = append(out, r)
				i += 2
				continue
			}
		}
		return "", fmt.Errorf("%w: unpaired surrogate at octet %d", ErrInvalid, i)
	}
	return string(out), nil
}
