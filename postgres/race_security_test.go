package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"verifyd"
	"verifyd/auth"
	vhttp "verifyd/http"
	"verifyd/otp"
	"verifyd/phone"
	"verifyd/postgres"
)

// apiPair is two API servers, as two verifyd instances would run, on one
// PostgreSQL database, with one account and a clock the test moves.
type apiPair struct {
	t       *testing.T
	dsn     string
	stores  [2]*postgres.Store
	servers [2]http.Handler
	keyring *otp.Keyring
	account *verifyd.Account
	secret  string

	mu  sync.Mutex
	now time.Time

	// logs is everything both servers logged.
	logs lockedBuffer
}

// lockedBuffer is a buffer that two servers may log to at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newAPIPair(t *testing.T, settings ...[2]string) *apiPair {
	t.Helper()
	dsn := newDatabase(t)
	p := &apiPair{t: t, dsn: dsn, stores: [2]*postgres.Store{open(t, dsn), open(t, dsn)}, now: now()}
	var err error
	if p.keyring, err = otp.NewKeyring(make([]byte, otp.KeySize)); err != nil {
		t.Fatal(err)
	}
	p.account = &verifyd.Account{Name: "app", Created: now()}
	for _, kv := range settings {
		if err := p.account.Settings.Set(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if p.secret, err = auth.SetSecret(p.account, rand.Reader); err != nil {
		t.Fatal(err)
	}
	if err := p.stores[0].CreateAccount(t.Context(), p.account); err != nil {
		t.Fatal(err)
	}
	for i, s := range p.stores {
		p.servers[i] = vhttp.NewServer(vhttp.Config{
			Store:   s,
			Auth:    auth.NewChecker(s, p.clock, 0),
			Keyring: p.keyring,
			Lookup:  phone.Lookup{},
			Now:     p.clock,
			Rand:    rand.Reader,
			Logger:  slog.New(slog.NewJSONHandler(&p.logs, nil)),
		})
	}
	return p
}

func (p *apiPair) clock() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.now
}

func (p *apiPair) advance(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.now = p.now.Add(d)
}

// do sends one request to instance node.
func (p *apiPair) do(node int, method, path, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.SetBasicAuth(p.account.Name, p.secret)
	w := httptest.NewRecorder()
	p.servers[node%2].ServeHTTP(w, r)
	return w
}

// create sends a code to number and returns its request id.
func (p *apiPair) create(node int, number string) string {
	p.t.Helper()
	w := p.do(node, "POST", "/webapi/verify", `{"to":"`+number+`","from":"Test"}`)
	if w.Code != http.StatusAccepted {
		p.t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	var v struct{ RequestID string }
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		p.t.Fatal(err)
	}
	return v.RequestID
}

// wrongCode returns a code of the account's length that is not id's.
func (p *apiPair) wrongCode(id string) string {
	p.t.Helper()
	v, err := p.stores[0].FindVerification(context.Background(), p.account.ID, id)
	if err != nil {
		p.t.Fatal(err)
	}
	for i := 0; ; i++ {
		c := fmt.Sprintf("%0*d", p.account.Settings.CodeLen(), i)
		if !p.keyring.Equal(p.keyring.MAC(id, v.PhoneNumber, c), v.CodeMAC) {
			return c
		}
	}
}

// validate answers the status of a validate, or "204".
func (p *apiPair) validate(node int, id, code string) string {
	w := p.do(node, "PUT", "/webapi/verify/"+id+"/validate", `{"code":"`+code+`"}`)
	switch w.Code {
	case http.StatusNoContent:
		return "204"
	case http.StatusOK:
		var v struct{ Status string }
		json.Unmarshal(w.Body.Bytes(), &v)
		return v.Status
	}
	return fmt.Sprintf("%d %s", w.Code, w.Body)
}

// attempts is the attemptsRemaining and state GET shows for id.
func (p *apiPair) record(id string) (remaining int, state string) {
	p.t.Helper()
	w := p.do(0, "GET", "/webapi/verify/"+id, "")
	var rec struct {
		AttemptsRemaining int
		State             string
	}
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &rec) != nil {
		p.t.Fatalf("GET: %d %s", w.Code, w.Body)
	}
	return rec.AttemptsRemaining, rec.State
}

// all runs fn(i) for i in [0, n) at once and counts the answers.
func all(n int, fn func(i int) string) map[string]int {
	var (
		mu     sync.Mutex
		counts = map[string]int{}
	)
	parallel(n, func(i int) {
		got := fn(i)
		mu.Lock()
		counts[got]++
		mu.Unlock()
	})
	return counts
}

// One right code among many wrong ones, all at once on one request through
// two instances: the request ends either Verified with no lock, or Locked
// by its fifth wrong code with no verify; every wrong code answered counts,
// and none more.
func TestRaceRightCodeAmongWrongOnesAcrossInstances(t *testing.T) {
	t.Parallel()
	const testNumber, testCode = "447979080999", "424242"
	p := newAPIPair(t, [2]string{"testNumbers", testNumber + ":code=" + testCode})
	for round := range 6 {
		id := p.create(round, testNumber)
		right := round * 7 // where the right code falls among the 40
		counts := all(40, func(i int) string {
			code := "000000"
			if i == right {
				code = testCode
			}
			return p.validate(i, id, code)
		})
		remaining, state := p.record(id)
		wrong := counts["CodeNotVerified"] + counts["CodeLocked"]
		switch {
		case counts["CodeVerified"] == 1 && counts["CodeLocked"] == 0:
			if state != "Verified" || wrong > 4 {
				t.Fatalf("round %d: answers %v, state %s", round, counts, state)
			}
		case counts["CodeVerified"] == 0 && counts["CodeLocked"] == 1:
			if state != "Locked" || counts["CodeNotVerified"] != 4 {
				t.Fatalf("round %d: answers %v, state %s", round, counts, state)
			}
		default:
			t.Fatalf("round %d: answers %v, want one CodeVerified or one CodeLocked", round, counts)
		}
		if remaining != 0 || counts["204"] != 40-wrong-counts["CodeVerified"] {
			t.Fatalf("round %d: answers %v, %d attempts remaining", round, counts, remaining)
		}
	}
}

// Wrong codes typed at once on every request of one number, through two
// instances, are all counted in the number's run: a run of exactly the
// failures setting refuses the next send with a Retry-After of the whole
// cooldown, exact to the second, and one wrong code fewer would not.
func TestRaceRunOfWrongCodesAcrossInstances(t *testing.T) {
	t.Parallel()
	const to = "447979080215"
	for _, c := range []struct {
		name     string
		failures string
		refused  bool
	}{{"RefusedAtTheRun", "20", true}, {"SentUnderTheRun", "21", false}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := newAPIPair(t, [2]string{"limit.number", "off"}, [2]string{"limit.numberDaily", "off"},
				[2]string{"failures", c.failures}, [2]string{"failures.cooldown", "1h"})
			var ids, codes []string
			for i := range 4 {
				id := p.create(i, to)
				ids, codes = append(ids, id), append(codes, p.wrongCode(id))
			}
			// 8 validates of each request: its 5 wrong codes count, and 3
			// find it locked.
			counts := all(32, func(i int) string { return p.validate(i, ids[i%4], codes[i%4]) })
			if counts["CodeNotVerified"] != 16 || counts["CodeLocked"] != 4 || counts["204"] != 12 {
				t.Fatalf("answers %v", counts)
			}
			w := p.do(1, "POST", "/webapi/verify", `{"to":"`+to+`","from":"Test"}`)
			switch {
			case !c.refused && w.Code != http.StatusAccepted:
				t.Fatalf("a run of 20 refused a send under failures=21: %d %s", w.Code, w.Body)
			case c.refused && (w.Code != http.StatusBadRequest || w.Header().Get("Retry-After") != "3600"):
				t.Fatalf("after a run of 20: %d %s Retry-After %q, want 400 Throttled for 3600 s", w.Code, w.Body, w.Header().Get("Retry-After"))
			case c.refused:
				p.advance(time.Hour - time.Second)
				if w := p.do(0, "POST", "/webapi/verify", `{"to":"`+to+`","from":"Test"}`); w.Code != http.StatusBadRequest || w.Header().Get("Retry-After") != "1" {
					t.Fatalf("a second before the cooldown ends: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
				}
				p.advance(2 * time.Second)
				p.create(1, to)
			}
		})
	}
}

// Sends at once to one number, its prefix, its country and the account,
// through two instances: each limit lets exactly its count through, and every refusal
// carries the Retry-After after which a retry passes.
func TestRaceSendLimitsAcrossInstances(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		limit, rate string
		number      func(i int) string
		count       int
		retry       int // the Retry-After of each refusal, in seconds
	}{
		{"number", "5/10m", func(int) string { return "447979080215" }, 5, 600},
		{"prefix", "7/1h", func(i int) string { return fmt.Sprintf("44797908%04d", i) }, 7, 3600},
		{"country", "9/1d", func(i int) string { return fmt.Sprintf("4479790%05d", i) }, 9, 86400},
		{"account", "6/1m", func(i int) string { return fmt.Sprintf("44797908%04d", i) }, 6, 60},
		{"accountDaily", "8/1d", func(i int) string { return fmt.Sprintf("44797908%04d", i) }, 8, 86400},
	} {
		t.Run(c.limit, func(t *testing.T) {
			t.Parallel()
			p := newAPIPair(t, [2]string{"limit." + c.limit, c.rate})
			var (
				mu      sync.Mutex
				retries = map[string]int{}
			)
			counts := all(30, func(i int) string {
				w := p.do(i, "POST", "/webapi/verify", `{"to":"`+c.number(i)+`","from":"Test"}`)
				if w.Code == http.StatusBadRequest {
					mu.Lock()
					retries[w.Header().Get("Retry-After")]++
					mu.Unlock()
				}
				return fmt.Sprint(w.Code)
			})
			if counts["202"] != c.count || counts["400"] != 30-c.count || retries[fmt.Sprint(c.retry)] != 30-c.count {
				t.Fatalf("answers %v, Retry-After %v; want %d accepted and the rest refused for %d s", counts, retries, c.count, c.retry)
			}
			p.advance(time.Second * time.Duration(c.retry+1))
			p.create(0, c.number(0))
		})
	}
}

// Cancels and right codes at once on one request, through two instances:
// a request answered CodeVerified stays Verified, and one cancelled first
// never verifies.
func TestRaceCancelAgainstRightCodesAcrossInstances(t *testing.T) {
	t.Parallel()
	const testNumber, testCode = "447979080999", "424242"
	p := newAPIPair(t, [2]string{"testNumbers", testNumber + ":code=" + testCode})
	for round := range 6 {
		id := p.create(round, testNumber)
		counts := all(40, func(i int) string {
			if (i+round)%2 == 0 {
				w := p.do(i/2, "DELETE", "/webapi/verify/"+id, "")
				return fmt.Sprintf("DELETE %d", w.Code)
			}
			return p.validate(i/2, id, testCode)
		})
		_, state := p.record(id)
		switch {
		case counts["CodeVerified"] == 1 && counts["204"] == 19 && state == "Verified":
		case counts["CodeVerified"] == 0 && counts["204"] == 20 && state == "Cancelled":
		default:
			t.Fatalf("round %d: answers %v, state %s", round, counts, state)
		}
		if counts["DELETE 204"] != 20 {
			t.Fatalf("round %d: answers %v", round, counts)
		}
	}
}
