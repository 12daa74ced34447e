package http

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"verifyd"
	"verifyd/auth"
)

// createAs sends a create to number to as the client behind the trusted
// proxy, with the credentials of user (the env's account when "").
func (e *testEnv) createAs(user, secret, client, to string) *httptest.ResponseRecorder {
	e.t.Helper()
	if user == "" {
		user, secret = e.user, e.secret
	}
	return e.doWith("POST", "/webapi/verify", `{"to":"`+to+`","from":"Test"}`, func(r *http.Request) {
		r.SetBasicAuth(user, secret)
		if client != "" {
			r.Header.Set("X-Forwarded-For", client)
		}
	})
}

// otherAccount stores a second account with default settings and returns
// its credentials.
func (e *testEnv) otherAccount(name string) (user, secret string) {
	e.t.Helper()
	a := &verifyd.Account{Name: name, Created: t0}
	secret, err := auth.SetSecret(a, rand.NewChaCha8([32]byte{byte(len(name))}))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.CreateAccount(e.t.Context(), a); err != nil {
		e.t.Fatal(err)
	}
	return name, secret
}

// wantThrottled fails unless w is the refusal of the named limit with
// Retry-After retry.
func wantThrottled(t *testing.T, w *httptest.ResponseRecorder, property, limit string, retry int) {
	t.Helper()
	if w.Code != http.StatusBadRequest {
		t.Fatalf("status %d, body %s; want 400 Throttled", w.Code, w.Body)
	}
	var fs []verifyd.Failure
	decodeInto(t, w, &fs)
	if len(fs) != 1 || fs[0].Property != property || fs[0].Code != verifyd.FailThrottled {
		t.Fatalf("failures %+v, want one Throttled of property %q", fs, property)
	}
	if !strings.Contains(fs[0].Details, "the "+limit+" limit") && !strings.Contains(fs[0].Details, "conversion watch") {
		t.Fatalf("details %q do not name the %s limit", fs[0].Details, limit)
	}
	if got := w.Header().Get("Retry-After"); got != fmt.Sprint(retry) {
		t.Fatalf("Retry-After = %q, want %d", got, retry)
	}
}

// Each send limit: sends up to it pass, the next is refused with an exact
// Retry-After, a retry a second early is refused again and one a second
// late passes, and a send to an unrelated number, prefix, country, client
// or account passes meanwhile.
func TestEachSendLimit(t *testing.T) {
	t.Parallel()
	const (
		gb1, gb2, gb3 = "447979080215", "447979080216", "447979080217"
		otherPrefix   = "447979090215"
		fr            = "33612345678"
	)
	for _, c := range []struct {
		limit    string
		limits   map[string]string
		property string
		fill     []string // sent first, from client A
		to       string   // then refused
		retry    int
		// unrelated passes while to is refused: a number (from client A),
		// or with otherClient or otherAccount the same number from another
		// client or account.
		unrelated                 string
		otherClient, otherAccount bool
	}{
		{limit: "number", property: "to", fill: []string{gb1, gb1, gb1, gb1, gb1}, to: gb1, retry: 600, unrelated: gb2},
		{limit: "numberDaily", limits: map[string]string{"number": "off", "numberDaily": "3/1d"}, property: "to",
			fill: []string{gb1, gb1, gb1}, to: gb1, retry: 24 * 3600, unrelated: gb2},
		{limit: "prefix", limits: map[string]string{"prefix": "2/1h"}, property: "to",
			fill: []string{gb1, gb2}, to: gb3, retry: 3600, unrelated: otherPrefix},
		{limit: "country", limits: map[string]string{"country": "2/1d"}, property: "to",
			fill: []string{gb1, gb2}, to: gb3, retry: 24 * 3600, unrelated: fr},
		{limit: "ip", limits: map[string]string{"ip": "2/1m"}, property: "",
			fill: []string{gb1, gb2}, to: gb3, retry: 60, unrelated: gb3, otherClient: true},
		{limit: "account", limits: map[string]string{"account": "2/1m"}, property: "",
			fill: []string{gb1, gb2}, to: gb3, retry: 60, unrelated: gb3, otherAccount: true},
		{limit: "accountDaily", limits: map[string]string{"accountDaily": "2/1d"}, property: "",
			fill: []string{gb1, gb2}, to: gb3, retry: 24 * 3600, unrelated: gb3, otherAccount: true},
	} {
		t.Run(c.limit, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t,
				withConfig(func(cfg *Config) { cfg.TrustedProxies = mustPrefixes("192.0.2.0/24") }), // httptest's peer
				withSettings(func(s *verifyd.Settings) { s.Limits = c.limits }))
			const clientA, clientB = "198.51.100.1", "198.51.100.2"
			for i, to := range c.fill {
				if w := e.createAs("", "", clientA, to); w.Code != http.StatusAccepted {
					t.Fatalf("send %d of %d: %d %s", i+1, len(c.fill), w.Code, w.Body)
				}
			}
			wantThrottled(t, e.createAs("", "", clientA, c.to), c.property, c.limit, c.retry)

			user, secret, client := "", "", clientA
			switch {
			case c.otherClient:
				client = clientB
			case c.otherAccount:
				user, secret = e.otherAccount("other")
			}
			if w := e.createAs(user, secret, client, c.unrelated); w.Code != http.StatusAccepted {
				t.Fatalf("unrelated send: %d %s", w.Code, w.Body)
			}

			e.advance(time.Duration(c.retry-1) * time.Second)
			wantThrottled(t, e.createAs("", "", clientA, c.to), c.property, c.limit, 1)
			e.advance(2 * time.Second)
			if w := e.createAs("", "", clientA, c.to); w.Code != http.StatusAccepted {
				t.Fatalf("a second after Retry-After: %d %s", w.Code, w.Body)
			}

			// The refusal was logged with the limit's name and the masked
			// number only.
			e.logMu.Lock()
			logs := e.logs.String()
			e.logMu.Unlock()
			if !strings.Contains(logs, `"limit":"`+c.limit+`"`) || !strings.Contains(logs, `"to":"`+maskOf(c.to)+`"`) {
				t.Fatalf("no log line names the %s limit and the masked number:\n%s", c.limit, logs)
			}
			// A refused create made no request: an id on its line would
			// lead an operator to one that GET answers 404.
			for _, line := range strings.Split(logs, "\n") {
				if strings.Contains(line, `"limit":"`) && strings.Contains(line, `"requestId"`) {
					t.Fatalf("a refused create's log line names a request id:\n%s", line)
				}
			}
			e.noLeaks(c.to)
		})
	}
}

// maskOf is the masked form of the test numbers in logs.
func maskOf(digits string) string {
	cc := 2
	if strings.HasPrefix(digits, "1") {
		cc = 1
	}
	return digits[:cc] + strings.Repeat("*", len(digits)-cc-3) + digits[len(digits)-3:]
}

// After a run of wrong codes (across requests) the number is refused until
// the cooldown after the last, and other numbers are not; a right code ends
// the run.
func TestCreateRefusedAfterARunOfWrongCodes(t *testing.T) {
	t.Parallel()
	const to, other = "447979080215", "447979080216"
	e := newEnv(t, withSettings(func(s *verifyd.Settings) {
		s.Limits = map[string]string{"number": "off", "numberDaily": "off"}
		for _, kv := range [][2]string{{"failures", "4"}, {"failures.cooldown", "1h"}} {
			if err := s.Set(kv[0], kv[1]); err != nil {
				t.Fatal(err)
			}
		}
	}))
	wrong := func(id, code string) {
		t.Helper()
		if w := e.validate(id, wrongCode(code)); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "CodeNotVerified") {
			t.Fatalf("wrong code: %d %s", w.Code, w.Body)
		}
	}
	first, firstCode := e.sendCode(to)
	second, secondCode := e.sendCode(to)
	wrong(first, firstCode)
	wrong(first, firstCode)
	wrong(second, secondCode)
	// Three in a row is under four: still sent.
	third, thirdCode := e.sendCode(to)
	e.advance(time.Minute)
	wrong(third, thirdCode)
	wantThrottled(t, e.createAs("", "", "", to), "to", "failures", 3600)
	if !strings.Contains(e.do("POST", "/webapi/verify", `{"to":"`+to+`","from":"Test"}`).Body.String(), "4 in a row") {
		t.Fatal("the refusal does not say how many wrong codes in a row refuse")
	}
	e.create(`{"to":"` + other + `","from":"Test"}`)

	e.advance(time.Hour - time.Second)
	wantThrottled(t, e.createAs("", "", "", to), "to", "failures", 1)
	e.advance(2 * time.Second)
	e.create(`{"to":"` + to + `","from":"Test"}`)
}

func TestRightCodeEndsTheRunOfWrongCodes(t *testing.T) {
	t.Parallel()
	const to = "447979080215"
	e := newEnv(t, withSettings(func(s *verifyd.Settings) {
		s.Limits = map[string]string{"number": "off", "numberDaily": "off"}
		s.MaxFailures = 2
	}))
	id, code := e.sendCode(to)
	e.validate(id, wrongCode(code))
	if w := e.validate(id, code); !strings.Contains(w.Body.String(), "CodeVerified") {
		t.Fatalf("right code: %d %s", w.Code, w.Body)
	}
	id, code = e.sendCode(to)
	e.validate(id, wrongCode(code))
	e.create(`{"to":"` + to + `","from":"Test"}`) // one in a row, not two
	e.validate(id, wrongCode(code))
	wantThrottled(t, e.createAs("", "", "", to), "to", "failures", int(verifyd.DefaultFailureCooldown/time.Second))

	t.Run("FailuresOff", func(t *testing.T) {
		e := newEnv(t, withSettings(func(s *verifyd.Settings) { s.FailuresOff, s.MaxFailures = true, 1 }))
		id, code := e.sendCode(to)
		e.validate(id, wrongCode(code))
		e.create(`{"to":"` + to + `","from":"Test"}`)
	})
}

// pump sends the traffic of a pumping run at the env's clock: n creates to
// consecutive numbers of the range prefix (4 digits left), of which the
// first verified are validated with their right code.
func (e *testEnv) pump(prefix string, n, verified int) {
	e.t.Helper()
	for i := range n {
		to := fmt.Sprintf("%s%04d", prefix, i)
		if i >= verified {
			e.create(`{"to":"` + to + `","from":"Test"}`)
			continue
		}
		id, code := e.sendCode(to)
		if w := e.validate(id, code); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "CodeVerified") {
			e.t.Fatalf("validate %s: %d %s", to, w.Code, w.Body)
		}
	}
}

// runWatch runs the conversion watch as the maintenance does, at the env's
// clock.
func (e *testEnv) runWatch() *verifyd.WatchReport {
	e.t.Helper()
	r, err := verifyd.RunWatch(e.t.Context(), e.store, e.clock())
	if err != nil {
		e.t.Fatalf("RunWatch: %v", err)
	}
	return r
}

// The pumped range: 200 sends, none verified, beside 60 verified sends of
// real users in another range of the country, which keeps the country's
// share (60 of 260) above the 20% threshold.
const (
	pumpedRange = "44797908"
	realRange   = "44797909"
)

func TestConversionWatchBlocksAPumpedRange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSettings(func(s *verifyd.Settings) {
		s.Limits = map[string]string{"prefix": "off"}
		s.Watch = verifyd.WatchOn
	}))
	e.pump(pumpedRange, 200, 0)
	e.pump(realRange, 60, 60)
	e.advance(verifyd.WatchDelay + time.Second)
	if r := e.runWatch(); len(r.Started) != 1 || r.Started[0].Subject != pumpedRange || r.Started[0].Sends != 200 {
		t.Fatalf("started %+v, want the pumped range", r.Started)
	}
	const pumped = pumpedRange + "9999"
	cooldown := int(verifyd.DefaultWatchCooldown / time.Second)
	wantThrottled(t, e.createAs("", "", "", pumped), "to", "watchPrefix", cooldown)
	e.create(`{"to":"` + realRange + `9999","from":"Test"}`)
	e.create(`{"to":"33612345678","from":"Test"}`)

	e.advance(time.Duration(cooldown-1) * time.Second)
	wantThrottled(t, e.createAs("", "", "", pumped), "to", "watchPrefix", 1)
	e.advance(2 * time.Second)
	e.create(`{"to":"` + pumped + `","from":"Test"}`)
	e.noLeaks(pumped)
}

func TestConversionWatchInMonitorModeOnlyReports(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSettings(func(s *verifyd.Settings) { s.Limits = map[string]string{"prefix": "off"} }))
	e.pump(pumpedRange, 200, 0)
	e.pump(realRange, 60, 60)
	e.advance(verifyd.WatchDelay + time.Second)
	r := e.runWatch()
	if len(r.Started) != 1 || r.Started[0].Mode != verifyd.WatchMonitor {
		t.Fatalf("started %+v, want the pumped range reported", r.Started)
	}
	e.create(`{"to":"` + pumpedRange + `9999","from":"Test"}`)
}

func TestConversionWatchLeavesAConvertingRangeAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSettings(func(s *verifyd.Settings) {
		s.Limits = map[string]string{"prefix": "off"}
		s.Watch = verifyd.WatchOn
	}))
	e.pump(pumpedRange, 200, 120)
	e.advance(verifyd.WatchDelay + time.Second)
	if r := e.runWatch(); len(r.Started) != 0 || len(r.Near) != 0 {
		t.Fatalf("started %+v, near %+v; want nothing", r.Started, r.Near)
	}
	e.create(`{"to":"` + pumpedRange + `9999","from":"Test"}`)
}

// The allow-list (alpha-2 and alpha-3 alike, as accounts set writes them)
// and the landline switch refuse before anything is queued, with their own
// codes and no Retry-After: retrying does not help.
func TestAllowListAndLandlineRefuseBeforeSending(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSettings(func(s *verifyd.Settings) {
		for _, kv := range [][2]string{{"countries", "gbr, us"}, {"blockLandlines", "true"}} {
			if err := s.Set(kv[0], kv[1]); err != nil {
				t.Fatal(err)
			}
		}
	}))
	for _, c := range []struct{ to, want string }{
		{"33612345678", "to:CountryNotAllowed"},
		{"442071234567", "to:NumberTypeNotAllowed"},
	} {
		w := e.do("POST", "/webapi/verify", `{"to":"`+c.to+`","from":"Test"}`)
		if got := failures(t, w); w.Code != http.StatusBadRequest || len(got) != 1 || got[0] != c.want || w.Header().Get("Retry-After") != "" {
			t.Fatalf("%s: %d %v Retry-After %q", c.to, w.Code, got, w.Header().Get("Retry-After"))
		}
	}
	ms, err := e.store.ClaimMessages(t.Context(), e.clock(), time.Minute, 10)
	if err != nil || len(ms) != 0 {
		t.Fatalf("refused sends queued %d messages (%v)", len(ms), err)
	}
	e.create(`{"to":"447979080215","from":"Test"}`)
	e.create(`{"to":"15417543010","from":"Test"}`)
}
