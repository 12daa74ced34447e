// Package auth checks the credentials an application presents with each API
// request, and makes the credentials that `verifyd accounts create` prints.
//
// An account holds either a generated secret, stored as its SHA-256 digest
// (a secret with 160 random bits needs no slow hash, and no server key, so
// accounts can be created before any server has run), or a password its owner
// chose, stored as an argon2id hash because a chosen password may be weak.
package auth

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"io"
	"strings"

	"verifyd"
)

// secretBytes is the entropy of a generated secret: 160 bits, above the
// 128 the security promise asks for.
const secretBytes = 20

// secretEncoding writes secrets in lowercase base32 without padding: 32
// characters from a-z and 2-7, which a double click selects whole and which
// survive shells, URLs and spreadsheets unquoted.
var secretEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewSecret returns a new secret drawn from r (crypto/rand.Reader in
// production): 32 lowercase base32 characters carrying 160 random bits.
func NewSecret(r io.Reader) (string, error) {
	b := make([]byte, secretBytes)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("auth: drawing a secret: %w", err)
	}
	return secretEncoding.EncodeToString(b), nil
}

// Digest is how a generated secret is stored: its SHA-256.
func Digest(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// SetSecret gives a a new generated secret drawn from r, replacing any
// password, and returns the secret. It is shown once; only its digest is
// kept.
func SetSecret(a *verifyd.Account, r io.Reader) (string, error) {
	secret, err := NewSecret(r)
	if err != nil {
		return "", err
	}
	a.SecretDigest = Digest(secret)
	a.PasswordHash = ""
	return secret, nil
}

// SetPassword gives a a password its owner chose, replacing any generated
// secret. The salt is drawn from r.
func SetPassword(a *verifyd.Account, password string, r io.Reader) error {
	if err := CheckPassword(password); err != nil {
		return err
	}
	hash, err := HashPassword(password, r)
	if err != nil {
		return err
	}
	a.PasswordHash = hash
	a.SecretDigest = nil
	return nil
}

// MinPasswordLength is the shortest chosen password accepted (NIST SP
// 800-63B's floor for a memorised secret chosen by its owner).
const MinPasswordLength = 8

// MaxPasswordLength bounds the work one check can cost; HTTP Basic passes
// the password whole, so a megabyte-long one would otherwise be hashed.
const MaxPasswordLength = 256

// CheckPassword reports why a chosen password cannot be used, if it cannot.
// Line breaks and NULs are refused because the password travels in an HTTP
// header, where they cannot be sent.
func CheckPassword(password string) error {
	switch {
	case len(password) < MinPasswordLength:
		return fmt.Errorf("auth: a password needs at least %d characters", MinPasswordLength)
	case len(password) > MaxPasswordLength:
		return fmt.Errorf("auth: a password may have at most %d characters", MaxPasswordLength)
	case strings.ContainsAny(password, "\r\n\x00"):
		return fmt.Errorf("auth: a password may not contain a line break or a NUL")
	}
	return nil
}
