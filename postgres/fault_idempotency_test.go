package postgres_test

import (
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"verifyd"
	"verifyd/auth"
	vhttp "verifyd/http"
	"verifyd/otp"
	"verifyd/phone"
	"verifyd/postgres"
)

// TestIdempotencyKeyWhoseReservationAnswerIsLost: the session of a create's
// Idempotency-Key reservation is ended after its commit is durable but
// before the answer reaches the instance. The create answers 503, having
// run nothing, and its client's retry with the same key once met 409
// "still running" until the 5-minute lease ended; the request now
// releases its reservation, so the retry runs and sends the one code.
// (The answer is held back as in TestCommitWhoseAnswerIsLostIsReportedCommitted.)
func TestIdempotencyKeyWhoseReservationAnswerIsLost(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c, dsn := ownCluster(t, "lost_reservation")
	s := open(t, dsn+"&application_name=victim", postgres.WithTimeout(5*time.Second))
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	keyring, err := otp.NewKeyring(make([]byte, otp.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	a := &verifyd.Account{Name: "app", Created: now()}
	secret, err := auth.SetSecret(a, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return now() }
	srv := vhttp.NewServer(vhttp.Config{
		Store:   s,
		Auth:    auth.NewChecker(s, clock, 0),
		Keyring: keyring,
		Lookup:  phone.Lookup{},
		Now:     clock,
		Rand:    rand.Reader,
		Logger:  slog.New(slog.DiscardHandler),
	})
	create := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/webapi/verify", strings.NewReader(`{"to":"447979080215","from":"Test"}`))
		r.SetBasicAuth(a.Name, secret)
		r.Header.Set("Idempotency-Key", "k")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w
	}

	admin := holdCommits(t, c)
	first := make(chan *httptest.ResponseRecorder, 1)
	go func() { first <- create() }()
	endHeldCommit(t, admin)
	// Commits are answered again: the release, and the retry.
	releaseCommits(t, admin)
	if w := <-first; w.Code != http.StatusServiceUnavailable {
		t.Fatalf("first: %d %s, want 503 (its reservation's answer was lost)", w.Code, w.Body)
	}
	if w := create(); w.Code != http.StatusAccepted || w.Header().Get("Idempotent-Replayed") != "" {
		t.Fatalf("retry: %d %s, want a fresh 202", w.Code, w.Body)
	}
	var messages int
	if err := connect(t, dsn).QueryRow(ctx, "SELECT count(*) FROM messages").Scan(&messages); err != nil {
		t.Fatal(err)
	}
	if messages != 1 {
		t.Fatalf("%d messages queued under one key, want 1", messages)
	}
}
