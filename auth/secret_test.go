package auth

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
	"testing/iotest"

	"verifyd"
)

func TestNewSecret(t *testing.T) {
	t.Parallel()
	t.Run("CarriesAtLeast128Bits", func(t *testing.T) {
		t.Parallel()
		s, err := NewSecret(bytes.NewReader(bytes.Repeat([]byte{0xa5}, 64)))
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != 32 {
			t.Fatalf("len(secret) = %d, want 32", len(s))
		}
		raw, err := secretEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("secret %q is not base32: %v", s, err)
		}
		if bits := len(raw) * 8; bits < 128 {
			t.Fatalf("secret carries %d bits, want >= 128", bits)
		}
		if s != strings.ToLower(s) || strings.ContainsAny(s, "=+/") {
			t.Fatalf("secret %q is not copy-paste friendly", s)
		}
	})
	t.Run("DiffersWithItsRandomBytes", func(t *testing.T) {
		t.Parallel()
		a, _ := NewSecret(bytes.NewReader(make([]byte, 20)))
		b, _ := NewSecret(bytes.NewReader(append(make([]byte, 19), 1)))
		if a == b {
			t.Fatalf("two different draws gave the same secret %q", a)
		}
	})
	t.Run("ErrShortRandom", func(t *testing.T) {
		t.Parallel()
		if _, err := NewSecret(bytes.NewReader(make([]byte, 19))); err == nil {
			t.Fatal("a secret from 19 random bytes was accepted")
		}
		if _, err := NewSecret(iotest.ErrReader(iotest.ErrTimeout)); err == nil {
			t.Fatal("a failing random source was ignored")
		}
	})
}

func TestDigestIsSHA256(t *testing.T) {
	t.Parallel()
	want := sha256.Sum256([]byte("abc"))
	if !bytes.Equal(Digest("abc"), want[:]) {
		t.Fatalf("Digest(abc) = %x, want %x", Digest("abc"), want)
	}
}

func TestSetSecretKeepsOnlyTheDigest(t *testing.T) {
	t.Parallel()
	a := &verifyd.Account{PasswordHash: "$argon2id$old"}
	s, err := SetSecret(a, bytes.NewReader(make([]byte, 20)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.SecretDigest, Digest(s)) || a.PasswordHash != "" {
		t.Fatalf("account = %+v, want the digest of %q and no password", a, s)
	}
}

func TestHashPassword(t *testing.T) {
	t.Parallel()
	hash, err := HashPassword("correct horse", bytes.NewReader(make([]byte, 16)))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("IsPHCArgon2idWithOWASPParameters", func(t *testing.T) {
		if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
			t.Fatalf("hash = %q", hash)
		}
		p, err := parseHash(hash)
		if err != nil {
			t.Fatal(err)
		}
		if p.memory < 19*1024 || p.time < 2 || p.threads != 1 || len(p.salt) != 16 || len(p.key) != 32 {
			t.Fatalf("parameters = %+v", p)
		}
	})
	t.Run("MatchesOnlyItsPassword", func(t *testing.T) {
		p, _ := parseHash(hash)
		if !p.match("correct horse") {
			t.Fatal("the right password did not match")
		}
		if p.match("correct horsf") {
			t.Fatal("a wrong password matched")
		}
	})
	t.Run("SaltComesFromTheReader", func(t *testing.T) {
		other, _ := HashPassword("correct horse", bytes.NewReader(bytes.Repeat([]byte{1}, 16)))
		if other == hash {
			t.Fatal("two salts gave one hash")
		}
	})
}

func TestParseHashRefusesWhatItCannotBound(t *testing.T) {
	t.Parallel()
	for name, h := range map[string]string{
		"Empty":       "",
		"Argon2i":     "$argon2i$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"OldVersion":  "$argon2id$v=16$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"HugeMemory":  "$argon2id$v=19$m=4194304,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"ManyPasses":  "$argon2id$v=19$m=19456,t=1000,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"ZeroThreads": "$argon2id$v=19$m=19456,t=2,p=0$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"BadSalt":     "$argon2id$v=19$m=19456,t=2,p=1$!!$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"ShortKey":    "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAA",
	} {
		if _, err := parseHash(h); err == nil {
			t.Errorf("%s: parseHash(%q) succeeded", name, h)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"short", strings.Repeat("x", MaxPasswordLength+1), "line\nbreak!"} {
		if CheckPassword(p) == nil {
			t.Errorf("CheckPassword(%q) accepted it", p)
		}
	}
	if err := CheckPassword("a fine passphrase"); err != nil {
		t.Errorf("CheckPassword refused a fine passphrase: %v", err)
	}
}
