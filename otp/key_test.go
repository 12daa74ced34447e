package otp

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

func testKeyring(t *testing.T, fill byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(bytes.Repeat([]byte{fill}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewKeyringErrKeySize(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewKeyring(make([]byte, n)); err == nil {
			t.Errorf("NewKeyring(%d bytes) accepted", n)
		}
	}
}

func TestMAC(t *testing.T) {
	t.Parallel()
	k := testKeyring(t, 1)
	base := k.MAC("req-1", "447123123456", "123456")
	if len(base) != 32 {
		t.Fatalf("MAC is %d bytes", len(base))
	}
	if !k.Equal(base, k.MAC("req-1", "447123123456", "123456")) {
		t.Fatal("MAC is not deterministic")
	}
	tests := []struct{ name, id, number, code string }{
		{"OtherRequest", "req-2", "447123123456", "123456"},
		{"OtherNumber", "req-1", "447123123457", "123456"},
		{"OtherCode", "req-1", "447123123456", "123457"},
		{"CharacterMovedFromIDToNumber", "req-", "1447123123456", "123456"},
		{"CharacterMovedFromNumberToCode", "req-1", "44712312345", "6123456"},
		{"CharacterMovedFromCodeToNumber", "req-1", "4471231234561", "23456"},
		{"AllInOneField", "req-1447123123456123456", "", ""},
		{"EmptyCode", "req-1", "447123123456", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := k.MAC(tt.id, tt.number, tt.code)
			if k.Equal(base, m) || bytes.Equal(base, m) {
				t.Fatalf("MAC(%q, %q, %q) equals the base MAC", tt.id, tt.number, tt.code)
			}
		})
	}
	t.Run("OtherKey", func(t *testing.T) {
		t.Parallel()
		if k.Equal(base, testKeyring(t, 2).MAC("req-1", "447123123456", "123456")) {
			t.Fatal("two keys give the same MAC")
		}
	})
}

// The stored MACs and sealed texts outlive any version of this code, so
// their format is checked against an independent construction from the
// standard library: HKDF-SHA256 sub-keys, HMAC over 8-byte big-endian
// length-prefixed fields, and AES-256-GCM with a 12-byte nonce prefix.
func TestMACMatchesSpecification(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, KeySize)
	k, err := NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	macKey, err := hkdf.Key(sha256.New, key, nil, "verifyd code MAC v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, macKey)
	for _, f := range []string{"4b1d1f9e-3c57-4a3e-9d2c-5a2f1b3c4d5e", "447123123456", "123456"} {
		m.Write(binary.BigEndian.AppendUint64(nil, uint64(len(f))))
		m.Write([]byte(f))
	}
	want := m.Sum(nil)
	if got := k.MAC("4b1d1f9e-3c57-4a3e-9d2c-5a2f1b3c4d5e", "447123123456", "123456"); !bytes.Equal(got, want) {
		t.Fatalf("MAC = %x, want %x", got, want)
	}
}

func TestSealMatchesSpecification(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, KeySize)
	k, err := NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	aeadKey, err := hkdf.Key(sha256.New, key, nil, "verifyd text AEAD v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(aeadKey)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	sealed := k.Seal("req-1", []byte("Your verification code is 123456"))
	if len(sealed) != 12+32+16 {
		t.Fatalf("sealed text is %d bytes, want nonce + text + tag = %d", len(sealed), 12+32+16)
	}
	got, err := gcm.Open(nil, sealed[:12], sealed[12:], []byte("req-1"))
	if err != nil || string(got) != "Your verification code is 123456" {
		t.Fatalf("standard AES-GCM open = %q, %v", got, err)
	}
}

func TestEqual(t *testing.T) {
	t.Parallel()
	k := testKeyring(t, 1)
	if !k.Equal([]byte{1, 2, 3}, []byte{1, 2, 3}) || k.Equal([]byte{1, 2, 3}, []byte{1, 2, 4}) || k.Equal([]byte{1, 2}, []byte{1, 2, 3}) {
		t.Fatal("Equal compares wrongly")
	}
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	k := testKeyring(t, 1)
	text := []byte("Your verification code is 123456")
	sealed := k.Seal("req-1", text)
	if bytes.Contains(sealed, []byte("123456")) {
		t.Fatal("sealed text holds the code in clear")
	}
	got, err := k.Open("req-1", sealed)
	if err != nil || !bytes.Equal(got, text) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if again := k.Seal("req-1", text); bytes.Equal(again, sealed) {
		t.Fatal("two seals of one text are equal: the nonce is not fresh")
	}
	if got, err := k.Open("req-1", k.Seal("req-1", nil)); err != nil || len(got) != 0 {
		t.Fatalf("empty text: %q, %v", got, err)
	}
}

func TestOpenErr(t *testing.T) {
	t.Parallel()
	k := testKeyring(t, 1)
	sealed := k.Seal("req-1", []byte("Your verification code is 123456"))
	flipped := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name   string
		k      *Keyring
		id     string
		sealed []byte
	}{
		{"OtherRequest", k, "req-2", sealed},
		{"OtherKey", testKeyring(t, 2), "req-1", sealed},
		{"FlippedNonceBit", k, "req-1", flipped(0)},
		{"FlippedTextBit", k, "req-1", flipped(15)},
		{"FlippedTagBit", k, "req-1", flipped(len(sealed) - 1)},
		{"Truncated", k, "req-1", sealed[:len(sealed)-1]},
		{"Empty", k, "req-1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, err := tt.k.Open(tt.id, tt.sealed); !errors.Is(err, ErrOpen) || got != nil {
				t.Fatalf("Open = %q, %v; want ErrOpen", got, err)
			}
		})
	}
}

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	s, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseKey(s)
	if err != nil || len(b) != KeySize {
		t.Fatalf("ParseKey(GenerateKey()) = %d bytes, %v", len(b), err)
	}
	if _, err := NewKeyring(b); err != nil {
		t.Fatal(err)
	}
	s2, _ := GenerateKey(rand.Reader)
	if s == s2 {
		t.Fatal("two generated keys are equal")
	}
	fixed, err := GenerateKey(bytes.NewReader(bytes.Repeat([]byte{0xAB}, KeySize)))
	if err != nil || fixed != strings.Repeat("ab", KeySize) {
		t.Fatalf("GenerateKey(0xAB...) = %q, %v", fixed, err)
	}
	if _, err := GenerateKey(iotest.ErrReader(errors.New("no entropy"))); err == nil {
		t.Fatal("GenerateKey with a broken reader succeeded")
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	hex64 := strings.Repeat("0123456789abcdef", 4)
	for _, s := range []string{hex64, " " + hex64 + "\n", strings.ToUpper(hex64), "\t" + hex64 + "\r\n"} {
		b, err := ParseKey(s)
		if err != nil || len(b) != KeySize || b[0] != 0x01 || b[31] != 0xEF {
			t.Errorf("ParseKey(%q) = % X, %v", s, b, err)
		}
	}
}

func TestParseKeyErr(t *testing.T) {
	t.Parallel()
	secretish := strings.Repeat("5ec2e7", 11)[:64]
	tests := []struct{ name, in, says string }{
		{"Empty", "", "has 0 characters"},
		{"Short", secretish[:63], "has 63 characters"},
		{"Long", secretish + "00", "has 66 characters"},
		{"NotHex", secretish[:62] + "zz", "not hexadecimal"},
		{"Base64", "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=", "has 44 characters"},
		{"InnerSpace", secretish[:32] + " " + secretish[33:], "not hexadecimal"},
		// 64 characters, one of them two bytes long: "has 64 characters"
		// would contradict "must be 64".
		{"NonASCIIOfRightLength", secretish[:63] + "é", "not hexadecimal"},
		{"NonASCIITooLong", secretish + "é", "has 65 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := ParseKey(tt.in)
			if err == nil {
				t.Fatalf("ParseKey(%q) = % X", tt.in, b)
			}
			msg := err.Error()
			if !strings.Contains(msg, "64 hexadecimal characters") || !strings.Contains(msg, tt.says) {
				t.Fatalf("error %q does not say what is expected (%q)", msg, tt.says)
			}
			if len(tt.in) >= 8 && strings.Contains(msg, tt.in[:8]) {
				t.Fatalf("error %q quotes the key", msg)
			}
		})
	}
}

// A receipt token is HMAC-SHA256 over the ref under its own HKDF key: never
// the code MAC's key, so that no token can pass for a code's MAC.
func TestReceiptTokenMatchesSpecification(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, KeySize)
	k, err := NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	tokenKey, err := hkdf.Key(sha256.New, key, nil, "verifyd gateway receipt token v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, tokenKey)
	m.Write([]byte("kannel-00112233445566778899aabbccddeeff"))
	if got := k.ReceiptToken("kannel-00112233445566778899aabbccddeeff"); !bytes.Equal(got, m.Sum(nil)) {
		t.Fatalf("ReceiptToken = %x, want %x", got, m.Sum(nil))
	}
	macKey, _ := hkdf.Key(sha256.New, key, nil, "verifyd code MAC v1", 32)
	if bytes.Equal(tokenKey, macKey) {
		t.Fatal("the receipt token key is the code MAC key")
	}
	if bytes.Equal(k.ReceiptToken("a"), k.ReceiptToken("b")) {
		t.Fatal("two refs have one token")
	}
	if bytes.Equal(k.ReceiptToken("a"), testKeyring(t, 8).ReceiptToken("a")) {
		t.Fatal("two server keys make one token")
	}
}
