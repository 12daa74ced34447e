package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestExitCodes(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"OK", nil, 0},
		{"Usage", usagef("bad flag"), 2},
		{"Failure", errors.New("database is locked"), 1},
	} {
		if got := exitCode(tc.err, &stderr); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.name, got, tc.want)
		}
	}
	if lines := strings.Count(stderr.String(), "\n"); lines != 2 {
		t.Errorf("want one stderr line per failure, got %q", stderr.String())
	}
}

func TestCommandLine(t *testing.T) {
	t.Parallel()
	isUsage := func(err error) bool {
		var ue usageError
		return errors.As(err, &ue)
	}

	t.Run("ErrUsage", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][]string{
			{},
			{"nonsense"},
			{"serve", "--no-such-flag"},
			{"serve", "--db", "mysql://x"},
			{"serve", "--sms", "carrier-pigeon"},
			{"serve", "--tls-cert", "a.pem"},
			{"accounts"},
			{"accounts", "create"},
			{"accounts", "create", "bad:name"},
			{"accounts", "set", "x"},
			{"keygen", "extra"},
			{"validate", "--url", "http://x", "--user", "u", "--password", "p", "only-id"},
			{"send", "--url", "http://x", "--user", "u", "--password", "p"},
		} {
			if _, err := cli(t, "", args...); !isUsage(err) {
				t.Errorf("verifyd %q: %v, want a usage error (exit 2)", args, err)
			}
		}
	})

	t.Run("Keygen", func(t *testing.T) {
		t.Parallel()
		a, err := cli(t, "", "keygen")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := cli(t, "", "keygen")
		if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(a) || a == b {
			t.Fatalf("keygen printed %q then %q", a, b)
		}
	})

	t.Run("ErrNoServerKey", func(t *testing.T) {
		t.Parallel()
		db := "sqlite:" + filepath.Join(t.TempDir(), "v.db")
		_, err := cli(t, "", "serve", "--db", db, "--addr", "127.0.0.1:0")
		if err == nil || isUsage(err) || !strings.Contains(err.Error(), "VERIFYD_SECRET_KEY") {
			t.Fatalf("serve without a key: %v, want a failure that names VERIFYD_SECRET_KEY", err)
		}
	})

	t.Run("Accounts", func(t *testing.T) {
		t.Parallel()
		db := "sqlite:" + filepath.Join(t.TempDir(), "v.db")
		secret, err := cli(t, "", "accounts", "create", "shop", "--db", db)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^[a-z2-7]{26,}\n$`).MatchString(secret) {
			t.Fatalf("create printed %q, want the secret alone", secret)
		}
		// Flags before the positional arguments work as well as after.
		if _, err := cli(t, "correct horse battery\n", "accounts", "--db", db, "--password-stdin", "create", "blog"); err != nil {
			t.Fatal(err)
		}
		if _, err := cli(t, "", "accounts", "create", "shop", "--db", db); err == nil || isUsage(err) {
			t.Fatalf("duplicate name: %v", err)
		}
		if _, err := cli(t, "short\n", "accounts", "create", "pw", "--password-stdin", "--db", db); !isUsage(err) {
			t.Fatalf("a short password: %v, want a usage error", err)
		}
		out, err := cli(t, "", "accounts", "set", "shop", "limits=off", "codeLength=8", "limit.number=3/1h", "--db", db)
		if err != nil || !strings.Contains(out, `"codeLength":8`) || !strings.Contains(out, `"limitsOff":true`) {
			t.Fatalf("set: %v %q", err, out)
		}
		for _, bad := range []string{"codeLength=3", "limit.number=fast", "noSuchKey=1", "limits"} {
			if _, err := cli(t, "", "accounts", "set", "shop", bad, "--db", db); !isUsage(err) {
				t.Errorf("set %s: %v, want a usage error", bad, err)
			}
		}
		if _, err := cli(t, "", "accounts", "disable", "blog", "--db", db); err != nil {
			t.Fatal(err)
		}
		if _, err := cli(t, "", "accounts", "disable", "ghost", "--db", db); err == nil || isUsage(err) {
			t.Fatalf("disable an unknown account: %v", err)
		}
		list, err := cli(t, "", "accounts", "list", "--db", db)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?m)^blog\s+disabled\s+password`).MatchString(list) ||
			!regexp.MustCompile(`(?m)^shop\s+active\s+secret`).MatchString(list) {
			t.Fatalf("list:\n%s", list)
		}
		if strings.Contains(list, strings.TrimSpace(secret)) {
			t.Fatal("list shows a secret")
		}
	})

	t.Run("Environment", func(t *testing.T) {
		t.Parallel()
		db := "sqlite:" + filepath.Join(t.TempDir(), "env.db")
		var out bytes.Buffer
		e := &env{getenv: func(k string) string {
			if k == "VERIFYD_DB" {
				return db
			}
			return ""
		}, stdout: &out, stderr: &bytes.Buffer{}}
		if err := runWith(context.Background(), []string{"accounts", "create", "viaenv"}, e); err != nil {
			t.Fatal(err)
		}
		list, err := cli(t, "", "accounts", "list", "--db", db)
		if err != nil || !strings.Contains(list, "viaenv") {
			t.Fatalf("VERIFYD_DB was not used: %v %q", err, list)
		}
	})

	t.Run("SendAndValidate", func(t *testing.T) {
		t.Parallel()
		s := startServer(t)
		conn := []string{"--url", s.url, "--user", s.user, "--password", s.secret}
		id, err := cli(t, "", append([]string{"send", "--to", "447979080401"}, conn...)...)
		if err != nil {
			t.Fatal(err)
		}
		id = strings.TrimSpace(id)
		code := s.code(t, "447979080401", id)
		status, err := cli(t, "", append(append([]string{"validate"}, conn...), id, wrong(code))...)
		if err != nil || status != "CodeNotVerified\n" {
			t.Fatalf("validate a wrong code: %v %q", err, status)
		}
		status, err = cli(t, "", append(append([]string{"validate"}, conn...), id, code)...)
		if err != nil || status != "CodeVerified\n" {
			t.Fatalf("validate the right code: %v %q", err, status)
		}
		if _, err := cli(t, "", append([]string{"send", "--to", "12"}, conn...)...); err == nil || !strings.Contains(err.Error(), "ToInvalid") {
			t.Fatalf("send to a bad number: %v", err)
		}
	})
}
