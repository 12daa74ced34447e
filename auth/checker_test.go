package auth

import (
	"bytes"
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"verifyd"
	"verifyd/sqlite"
)

// countingStore counts account reads of a real store.
type countingStore struct {
	verifyd.AccountStore
	reads     atomic.Int64
	afterRead func()
}

func (s *countingStore) FindAccountByName(ctx context.Context, name string) (*verifyd.Account, error) {
	s.reads.Add(1)
	a, err := s.AccountStore.FindAccountByName(ctx, name)
	if s.afterRead != nil {
		s.afterRead()
	}
	return a, err
}

// checkerEnv is a Checker over a fresh SQLite store, with a settable clock
// and a count of argon2id runs.
type checkerEnv struct {
	store  *countingStore
	check  *Checker
	now    time.Time
	argons atomic.Int64
}

func newCheckerEnv(t *testing.T) *checkerEnv {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "verifyd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e := &checkerEnv{store: &countingStore{AccountStore: db}, now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	e.check = NewChecker(e.store, func() time.Time { return e.now }, 0)
	e.check.onArgon2 = func() { e.argons.Add(1) }
	return e
}

// addSecret creates an account with a generated secret and returns it.
func (e *checkerEnv) addSecret(t *testing.T, name string, disabled bool) string {
	t.Helper()
	a := &verifyd.Account{Name: name, Disabled: disabled, Created: e.now}
	secret, err := SetSecret(a, bytes.NewReader(bytes.Repeat([]byte(name), 20)))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	return secret
}

// addPassword creates an account with a chosen password.
func (e *checkerEnv) addPassword(t *testing.T, name, password string) {
	t.Helper()
	a := &verifyd.Account{Name: name, Created: e.now}
	if err := SetPassword(a, password, bytes.NewReader(make([]byte, 16))); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
}

// counts returns and resets the argon2id runs and store reads so far.
func (e *checkerEnv) counts() (argons, reads int64) {
	return e.argons.Swap(0), e.store.reads.Swap(0)
}

func TestCheckerAccepts(t *testing.T) {
	t.Parallel()
	e := newCheckerEnv(t)
	ctx := context.Background()
	secret := e.addSecret(t, "app", false)
	e.addPassword(t, "human", "correct horse battery")

	t.Run("GeneratedSecretWithoutArgon2", func(t *testing.T) {
		a, err := e.check.Check(ctx, "app", secret)
		if err != nil {
			t.Fatal(err)
		}
		if a.Name != "app" || a.ID == 0 {
			t.Fatalf("account = %+v", a)
		}
		if argons, _ := e.counts(); argons != 0 {
			t.Fatalf("a generated secret cost %d argon2id runs, want 0", argons)
		}
	})
	t.Run("ChosenPasswordWithOneArgon2", func(t *testing.T) {
		a, err := e.check.Check(ctx, "human", "correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		if a.Name != "human" {
			t.Fatalf("account = %+v", a)
		}
		if argons, _ := e.counts(); argons != 1 {
			t.Fatalf("argon2id runs = %d, want 1", argons)
		}
	})
}

func TestCheckerRefusesAlikeWithTheSameWork(t *testing.T) {
	t.Parallel()
	e := newCheckerEnv(t)
	ctx := context.Background()
	secret := e.addSecret(t, "app", false)
	e.addPassword(t, "human", "correct horse battery")
	disabledSecret := e.addSecret(t, "gone", true)

	var first string
	for _, c := range []struct{ name, user, pass string }{
		{"ErrUnknownUser", "nobody", secret},
		{"ErrWrongSecret", "app", secret[:31] + "x"},
		{"ErrWrongPassword", "human", "correct horse batterx"},
		{"ErrEmptySecret", "app", ""},
		{"ErrDisabled", "gone", disabledSecret},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.counts()
			a, err := e.check.Check(ctx, c.user, c.pass)
			if a != nil || verifyd.ErrorCode(err) != verifyd.EUNAUTHORIZED {
				t.Fatalf("Check = %v, %v; want EUNAUTHORIZED", a, err)
			}
			if first == "" {
				first = err.Error()
			} else if err.Error() != first {
				t.Fatalf("refusal %q differs from %q", err, first)
			}
			argons, reads := e.counts()
			if argons != 1 {
				t.Fatalf("argon2id runs = %d, want 1 like every refusal", argons)
			}
			if reads != 1 {
				t.Fatalf("store reads = %d, want 1", reads)
			}
		})
	}
}

func TestCheckerCache(t *testing.T) {
	t.Parallel()
	e := newCheckerEnv(t)
	ctx := context.Background()
	e.addPassword(t, "human", "correct horse battery")

	if _, err := e.check.Check(ctx, "human", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	if argons, reads := e.counts(); argons != 1 || reads != 1 {
		t.Fatalf("first check: argon2id runs %d, reads %d; want 1, 1", argons, reads)
	}

	t.Run("HitCostsNoArgon2AndNoRead", func(t *testing.T) {
		e.now = e.now.Add(DefaultTTL - time.Millisecond)
		a, err := e.check.Check(ctx, "human", "correct horse battery")
		if err != nil || a.Name != "human" {
			t.Fatalf("Check = %v, %v", a, err)
		}
		if argons, reads := e.counts(); argons != 0 || reads != 0 {
			t.Fatalf("cached check: argon2id runs %d, reads %d; want 0, 0", argons, reads)
		}
	})
	t.Run("ErrWrongPasswordIsNeverCached", func(t *testing.T) {
		for range 2 {
			if _, err := e.check.Check(ctx, "human", "correct horse batterz"); verifyd.ErrorCode(err) != verifyd.EUNAUTHORIZED {
				t.Fatalf("err = %v", err)
			}
		}
		if argons, _ := e.counts(); argons != 2 {
			t.Fatalf("two wrong checks cost %d argon2id runs, want 2", argons)
		}
	})
	t.Run("ExpiresAfterTTL", func(t *testing.T) {
		e.now = e.now.Add(time.Millisecond)
		if _, err := e.check.Check(ctx, "human", "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		if argons, reads := e.counts(); argons != 1 || reads != 1 {
			t.Fatalf("check after the TTL: argon2id runs %d, reads %d; want 1, 1", argons, reads)
		}
	})
	t.Run("CallerCannotChangeTheCachedAccount", func(t *testing.T) {
		a, _ := e.check.Check(ctx, "human", "correct horse battery")
		a.Disabled = true
		b, err := e.check.Check(ctx, "human", "correct horse battery")
		if err != nil || b.Disabled {
			t.Fatalf("Check = %+v, %v", b, err)
		}
	})
}

func TestCheckerCacheIsBounded(t *testing.T) {
	t.Parallel()
	e := newCheckerEnv(t)
	e.check.maxCached = 2
	ctx := context.Background()
	for _, name := range []string{"a1", "a2", "a3"} {
		secret := e.addSecret(t, name, false)
		if _, err := e.check.Check(ctx, name, secret); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.check.cache); n != 2 {
		t.Fatalf("cache holds %d entries, want 2", n)
	}
}

func TestCheckerGivesUpWhenArgon2IsSaturated(t *testing.T) {
	t.Parallel()
	e := newCheckerEnv(t)
	e.check.sem = make(chan struct{}, 1)
	e.check.sem <- struct{}{} // every slot taken
	// The client gives up while waiting for a slot.
	ctx, cancel := context.WithCancel(context.Background())
	e.store.afterRead = cancel
	_, err := e.check.Check(ctx, "nobody", "whatever")
	if verifyd.ErrorCode(err) != verifyd.EUNAVAILABLE {
		t.Fatalf("err = %v, want EUNAVAILABLE", err)
	}
	if argons, _ := e.counts(); argons != 0 {
		t.Fatalf("argon2id ran %d times past a full semaphore", argons)
	}
}
