package auth

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// The argon2id parameters of new hashes: OWASP's first recommended set
// (19 MiB, 2 passes, 1 lane). Hashes keep their own parameters, so raising
// these later leaves old hashes readable.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32
)

// Bounds on the parameters read back from a stored hash, so that a
// tampered row cannot make one check cost gigabytes or minutes.
const (
	maxArgonMemory  = 256 * 1024
	maxArgonTime    = 16
	maxArgonThreads = 16
)

// errBadHash is returned for a stored hash this package cannot read.
var errBadHash = errors.New("auth: not an argon2id hash")

// argonParams is one decoded PHC string.
type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// HashPassword hashes a chosen password with argon2id and a salt drawn from
// r, and returns it in the PHC string format:
// $argon2id$v=19$m=19456,t=2,p=1$SALT$HASH.
func HashPassword(password string, r io.Reader) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := io.ReadFull(r, salt); err != nil {
		return "", fmt.Errorf("auth: drawing a salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// parseHash decodes a PHC argon2id string.
func parseHash(hash string) (*argonParams, error) {
	parts := strings.Split(hash, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, errBadHash
	}
	p := &argonParams{}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || n == 0 {
			return nil, errBadHash
		}
		switch k {
		case "m":
			p.memory = uint32(n)
		case "t":
			p.time = uint32(n)
		case "p":
			if n > maxArgonThreads {
				return nil, errBadHash
			}
			p.threads = uint8(n)
		default:
			return nil, errBadHash
		}
	}
	if p.memory == 0 || p.memory > maxArgonMemory || p.time == 0 || p.time > maxArgonTime || p.threads == 0 {
		return nil, errBadHash
	}
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(p.salt) < 8 {
		return nil, errBadHash
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(p.key) < 16 || len(p.key) > 64 {
		return nil, errBadHash
	}
	return p, nil
}

// match runs argon2id over password with p's parameters and compares the
// result with p's key in constant time.
func (p *argonParams) match(password string) bool {
	key := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1
}

// dummyParams returns what a check runs when there is no real hash to run
// (an unknown user, a wrong generated secret), so that every refusal costs one
// argon2id run with today's parameters and none reveals which case it was.
func dummyParams() *argonParams {
	return &argonParams{
		memory:  argonMemory,
		time:    argonTime,
		threads: argonThreads,
		salt:    make([]byte, argonSaltLen),
		key:     make([]byte, argonKeyLen),
	}
}
