package client_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"verifyd"
	"verifyd/auth"
	"verifyd/client"
	vhttp "verifyd/http"
	"verifyd/otp"
	"verifyd/sqlite"
)

// server starts the real API over SQLite with an account whose test number
// 447979080999 always gets the code 424242, and returns a client for it.
func server(t *testing.T) *client.Client {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	keyring, err := otp.NewKeyring(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	a := &verifyd.Account{Name: "app", Created: time.Now()}
	if err := a.Settings.Set("testNumbers", "447979080999:code=424242"); err != nil {
		t.Fatal(err)
	}
	if err := a.Settings.Set("limit.number", "2/1h"); err != nil {
		t.Fatal(err)
	}
	secret, err := auth.SetSecret(a, bytes.NewReader(bytes.Repeat([]byte{2}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(vhttp.NewServer(vhttp.Config{
		Store:   store,
		Auth:    auth.NewChecker(store, time.Now, time.Minute),
		Keyring: keyring,
		Now:     time.Now,
	}))
	t.Cleanup(srv.Close)
	return &client.Client{BaseURL: srv.URL, User: "app", Password: secret}
}

func TestClient(t *testing.T) {
	t.Parallel()
	c := server(t)
	ctx := context.Background()

	t.Run("SendValidateGet", func(t *testing.T) {
		v, err := c.Send(ctx, client.SendRequest{To: "+44 7979 080999", From: "Shop"})
		if err != nil {
			t.Fatal(err)
		}
		if v.Status != client.CodeNotVerified || v.PhoneNumber != "447979080999" || v.Created.IsZero() {
			t.Fatalf("send: %+v", v)
		}
		got, err := c.Validate(ctx, v.RequestID, "111111")
		if err != nil || got.Status != client.CodeNotVerified {
			t.Fatalf("wrong code: %+v %v", got, err)
		}
		got, err = c.Validate(ctx, v.RequestID, "424242")
		if err != nil || got.Status != client.CodeVerified || got.Verified == nil {
			t.Fatalf("right code: %+v %v", got, err)
		}
		got, err = c.Validate(ctx, v.RequestID, "424242")
		if err != nil || got.Status != client.Finished {
			t.Fatalf("after verifying: %+v %v", got, err)
		}
		rec, err := c.Get(ctx, v.RequestID)
		if err != nil || rec.State != "Verified" || rec.Delivery == nil || rec.Delivery.State != "Delivered" {
			t.Fatalf("record: %+v %v", rec, err)
		}
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		_, err := c.Send(ctx, client.SendRequest{To: "4479790802150", From: "x"})
		e, ok := client.AsError(err)
		if !ok || e.StatusCode != 400 || !e.Has(verifyd.FailToInvalid) || !e.Has(verifyd.FailFromUnderMinTextLength) {
			t.Fatalf("%v", err)
		}
	})

	t.Run("ErrThrottled", func(t *testing.T) {
		for range 2 {
			if _, err := c.Send(ctx, client.SendRequest{To: "447979080555", From: "Shop"}); err != nil {
				t.Fatal(err)
			}
		}
		_, err := c.Send(ctx, client.SendRequest{To: "447979080555", From: "Shop"})
		e, ok := client.AsError(err)
		// 2 an hour: the next may go when the first is an hour old.
		if !ok || !e.Has(verifyd.FailThrottled) || e.RetryAfter < 59*time.Minute || e.RetryAfter > time.Hour {
			t.Fatalf("%v (retry after %v)", err, e.RetryAfter)
		}
	})

	t.Run("ErrUnauthorized", func(t *testing.T) {
		bad := *c
		bad.Password = "nope"
		_, err := bad.Send(ctx, client.SendRequest{To: "447979080999"})
		var e *client.Error
		if !errors.As(err, &e) || e.StatusCode != 401 {
			t.Fatalf("%v", err)
		}
	})

	t.Run("CancelAndNotFound", func(t *testing.T) {
		v, err := c.Send(ctx, client.SendRequest{To: "447979080999", From: "Shop", IdempotencyKey: "order-1"})
		if err != nil {
			t.Fatal(err)
		}
		again, err := c.Send(ctx, client.SendRequest{To: "447979080999", From: "Shop", IdempotencyKey: "order-1"})
		if err != nil || again.RequestID != v.RequestID {
			t.Fatalf("idempotent repeat: %+v %v", again, err)
		}
		if err := c.Cancel(ctx, v.RequestID); err != nil {
			t.Fatal(err)
		}
		if got, err := c.Validate(ctx, v.RequestID, "424242"); err != nil || got.Status != client.Finished {
			t.Fatalf("validate after cancel: %+v %v", got, err)
		}
		if _, err := c.Get(ctx, "00000000-0000-4000-8000-000000000000"); err == nil {
			t.Fatal("an unknown request was found")
		} else if e, _ := client.AsError(err); e == nil || e.StatusCode != 404 {
			t.Fatalf("%v", err)
		}
	})
}
