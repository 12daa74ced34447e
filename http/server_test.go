package http

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"verifyd"
	"verifyd/auth"
	"verifyd/otp"
	"verifyd/phone"
	"verifyd/sqlite"
)

// t0 is the test clock's start: a moment with milliseconds, to see them
// written.
var t0 = time.Date(2025, 3, 4, 10, 20, 30, 419_000_000, time.UTC)

// testEnv is a Server over a fresh SQLite store, with a settable clock, a
// seeded random source, and an account whose secret the test knows.
type testEnv struct {
	t       *testing.T
	store   *sqlite.Store
	keyring *otp.Keyring
	srv     *Server
	cfg     Config

	mu    sync.Mutex
	now   time.Time
	codes map[string]string // request id -> text, as the delivery worker would open it

	logMu sync.Mutex
	logs  bytes.Buffer

	user, secret string
	account      *verifyd.Account
}

// envOption changes the Config or the account before the server is built.
type envOption func(cfg *Config, a *verifyd.Account)

func newEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "verifyd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	keyring, err := otp.NewKeyring(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, store: store, keyring: keyring, now: t0, codes: map[string]string{}}
	e.cfg = Config{
		Store:   store,
		Auth:    auth.NewChecker(store, e.clock, 0),
		Keyring: keyring,
		Lookup:  testLookup{},
		Now:     e.clock,
		Rand:    rand.NewChaCha8([32]byte{1, 2, 3}),
		Logger:  slog.New(slog.NewJSONHandler(lockedWriter{&e.logMu, &e.logs}, nil)),
	}
	e.user = "app"
	e.account = &verifyd.Account{Name: e.user, Created: t0}
	for _, o := range opts {
		o(&e.cfg, e.account)
	}
	e.secret, err = auth.SetSecret(e.account, rand.NewChaCha8([32]byte{9}))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateAccount(ctx, e.account); err != nil {
		t.Fatal(err)
	}
	e.srv = NewServer(e.cfg)
	return e
}

func withSettings(fn func(s *verifyd.Settings)) envOption {
	return func(_ *Config, a *verifyd.Account) { fn(&a.Settings) }
}

func withConfig(fn func(cfg *Config)) envOption {
	return func(cfg *Config, _ *verifyd.Account) { fn(cfg) }
}

// lockedWriter serialises log writes from concurrent requests.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// deadNumber is the test number the test lookup reports Dead.
const deadNumber = "447979080299"

// testLookup is the built-in lookup, plus one test number that is Dead (the
// built-in never says Dead; a real lookup would).
type testLookup struct{}

func (testLookup) LookupNumber(ctx context.Context, n verifyd.Number) (verifyd.NumberStatus, error) {
	if n.Digits == deadNumber {
		return verifyd.NumberDead, nil
	}
	return phone.Lookup{}.LookupNumber(ctx, n)
}

func (e *testEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *testEnv) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

// do sends a request with the account's Basic credentials.
func (e *testEnv) do(method, target, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.doWith(method, target, body, func(r *http.Request) { r.SetBasicAuth(e.user, e.secret) })
}

// doWith sends a request after edit changes it.
func (e *testEnv) doWith(method, target, body string, edit func(r *http.Request)) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	// A developer's own browser, not httptest's example.com: the inbox
	// refuses a dotted name it was not told of.
	r.Host = "127.0.0.1:8080"
	if edit != nil {
		edit(r)
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	return w
}

// create sends a create that must succeed, and returns its answer.
func (e *testEnv) create(body string) verifyCode {
	e.t.Helper()
	w := e.do("POST", "/webapi/verify", body)
	if w.Code != http.StatusAccepted {
		e.t.Fatalf("create %s: %d %s", body, w.Code, w.Body)
	}
	var vc verifyCode
	decodeInto(e.t, w, &vc)
	return vc
}

// text returns the text queued for a request, opened as the delivery worker
// opens it, or "" when nothing was queued.
func (e *testEnv) text(requestID string) string {
	e.t.Helper()
	ms, err := e.store.ClaimMessages(context.Background(), e.clock(), time.Minute, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, m := range ms {
		p, err := e.keyring.Open(m.RequestID, m.Sealed)
		if err != nil {
			e.t.Fatalf("open %s: %v", m.RequestID, err)
		}
		e.codes[m.RequestID] = string(p)
	}
	return e.codes[requestID]
}

// code returns the code sent for a request.
func (e *testEnv) code(requestID string) string {
	e.t.Helper()
	text := e.text(requestID)
	code, ok := strings.CutPrefix(text, "Your verification code is ")
	if !ok {
		e.t.Fatalf("text of %s = %q", requestID, text)
	}
	return code
}

// sendCode creates a verification to a fresh number and returns its id and
// code.
func (e *testEnv) sendCode(to string) (id, code string) {
	e.t.Helper()
	vc := e.create(`{"to":"` + to + `","from":"Test"}`)
	return vc.RequestID, e.code(vc.RequestID)
}

// validate sends a validate of code and returns the answer.
func (e *testEnv) validate(id, code string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.do("PUT", "/webapi/verify/"+id+"/validate", `{"code":"`+code+`"}`)
}

// noLeaks fails the test if the log holds any of the secrets.
func (e *testEnv) noLeaks(secrets ...string) {
	e.t.Helper()
	e.logMu.Lock()
	defer e.logMu.Unlock()
	logs := e.logs.String()
	for _, s := range append(secrets, e.secret) {
		if s != "" && strings.Contains(logs, s) {
			e.t.Fatalf("the log holds %q:\n%s", s, logs)
		}
	}
}

func decodeInto(t *testing.T, w *httptest.ResponseRecorder, v any) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("Content-Type = %q, body %s", ct, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
}

// failures returns the (property, failureCode) pairs of a 400 answer.
func failures(t *testing.T, w *httptest.ResponseRecorder) []string {
	t.Helper()
	var fs []verifyd.Failure
	decodeInto(t, w, &fs)
	var out []string
	for _, f := range fs {
		if f.Details == "" {
			t.Errorf("failure %+v has no details", f)
		}
		out = append(out, f.Property+":"+f.Code)
	}
	return out
}
