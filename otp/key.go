package otp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/hkdf"
)

// KeySize is the size of the server key in bytes.
const KeySize = 32

// HKDF labels of the sub-keys. Each use of the server key gets its own key,
// so that a weakness in one use never touches the other. Changing a label
// invalidates every stored MAC or sealed text.
const (
	macLabel         = "verifyd code MAC v1"
	aeadLabel        = "verifyd text AEAD v1"
	fingerprintLabel = "verifyd server key fingerprint v1"
	receiptLabel     = "verifyd gateway receipt token v1"
)

// Keyring holds the keys derived from the server key. It is safe for
// concurrent use.
type Keyring struct {
	macKey      []byte
	aead        cipher.AEAD
	fingerprint []byte
	receiptKey  []byte
}

// NewKeyring derives the MAC and sealing keys from a 32-byte server key
// (see ParseKey) with HKDF-SHA256.
func NewKeyring(key []byte) (*Keyring, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("otp: the server key must be %d bytes, not %d", KeySize, len(key))
	}
	macKey, err := derive(key, macLabel)
	if err != nil {
		return nil, err
	}
	aeadKey, err := derive(key, aeadLabel)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(aeadKey)
	if err != nil {
		return nil, fmt.Errorf("otp: %w", err)
	}
	// Random 96-bit nonces, prefixed to the ciphertext. The limit of 2^32
	// texts per key is far beyond the life of a server key.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("otp: %w", err)
	}
	fingerprint, err := derive(key, fingerprintLabel)
	if err != nil {
		return nil, err
	}
	receiptKey, err := derive(key, receiptLabel)
	if err != nil {
		return nil, err
	}
	return &Keyring{macKey: macKey, aead: aead, fingerprint: fingerprint, receiptKey: receiptKey}, nil
}

// Fingerprint names the server key without giving it away (a key of its
// own, derived like the others): the database records it, so that a server
// started with another key, under which every stored MAC and sealed text is
// worthless, is refused instead of failing each right code.
func (k *Keyring) Fingerprint() []byte { return k.fingerprint }

// ReceiptToken returns HMAC-SHA256 over ref under a key of its own: the
// token an HTTP gateway's delivery report URL carries back, which is all
// that shows the report came from a URL this server wrote. A key apart from
// the code MAC's means no token can ever stand in for a code's MAC, or the
// other way round.
func (k *Keyring) ReceiptToken(ref string) []byte {
	m := hmac.New(sha256.New, k.receiptKey)
	m.Write([]byte(ref))
	return m.Sum(nil)
}

func derive(key []byte, label string) ([]byte, error) {
	out := make([]byte, KeySize)
	if _, err := io.ReadFull(hkdf.New(sha256.New, key, nil, []byte(label)), out); err != nil {
		return nil, fmt.Errorf("otp: deriving a key: %w", err)
	}
	return out, nil
}

// MAC returns HMAC-SHA256 over the request id, the number and the code,
// which is all the store keeps of a code. Binding the code to its request
// and number means a code never validates another request. Each field is
// prefixed with its length, so moving characters from one field to the next
// changes the MAC.
func (k *Keyring) MAC(requestID, number, code string) []byte {
	m := hmac.New(sha256.New, k.macKey)
	for _, f := range []string{requestID, number, code} {
		writeField(m, f)
	}
	return m.Sum(nil)
}

func writeField(h hash.Hash, f string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(f)))
	h.Write(n[:])
	h.Write([]byte(f))
}

// Equal compares two MACs in constant time.
func (k *Keyring) Equal(a, b []byte) bool { return hmac.Equal(a, b) }

// Seal encrypts plaintext with AES-256-GCM under a fresh random nonce,
// which it prefixes to the result. The request id is authenticated with it,
// so a sealed text moved to another request's row does not open.
func (k *Keyring) Seal(requestID string, plaintext []byte) []byte {
	return k.aead.Seal(nil, nil, plaintext, []byte(requestID))
}

// ErrOpen is returned for a sealed text that is damaged, was sealed for
// another request, or under another key.
var ErrOpen = errors.New("otp: sealed text does not open")

// Open decrypts what Seal returned for the same request id.
func (k *Keyring) Open(requestID string, sealed []byte) ([]byte, error) {
	p, err := k.aead.Open(nil, nil, sealed, []byte(requestID))
	if err != nil {
		return nil, ErrOpen
	}
	return p, nil
}

// GenerateKey returns a new server key, 32 bytes read from r
// (crypto/rand.Reader in production), as 64 hexadecimal characters.
func GenerateKey(r io.Reader) (string, error) {
	b := make([]byte, KeySize)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("otp: reading randomness: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// ParseKey reads a server key written as GenerateKey writes it: exactly 64
// hexadecimal characters, surrounding whitespace ignored. Its errors never
// quote the key, since a near-miss is still most of a secret.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	const want = "the server key must be 64 hexadecimal characters (32 bytes), such as `verifyd keygen` prints"
	// Counted in characters, as the message counts them: a key of 64
	// characters one of which is not ASCII is not hexadecimal, not of the
	// wrong length.
	if n := utf8.RuneCountInString(s); n != 2*KeySize {
		return nil, fmt.Errorf("%s; this one has %d characters", want, n)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s; this one has a character that is not hexadecimal (0-9, a-f)", want)
	}
	return b, nil
}
