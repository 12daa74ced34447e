package kannel

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"verifyd"
)

// testSigner signs as otp.Keyring does, under a fixed key.
type testSigner struct{}

func (testSigner) ReceiptToken(ref string) []byte {
	m := hmac.New(sha256.New, []byte("test receipt key"))
	m.Write([]byte(ref))
	return m.Sum(nil)
}

const testPassword = "Gw#pass9"

// gateway is a fake smsbox: it records each sendsms query and answers
// with status and body.
type gateway struct {
	*httptest.Server
	mu      sync.Mutex
	queries []url.Values
	status  int
	body    string
}

func newGateway(t *testing.T) *gateway {
	g := &gateway{status: http.StatusAccepted, body: "0: Accepted for delivery"}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if r.Method != http.MethodGet || r.URL.Path != "/cgi-bin/sendsms" {
			http.Error(w, "no such page", http.StatusNotFound)
			return
		}
		g.queries = append(g.queries, r.URL.Query())
		w.WriteHeader(g.status)
		w.Write([]byte(g.body))
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *gateway) answer(status int, body string) {
	g.mu.Lock()
	g.status, g.body = status, body
	g.mu.Unlock()
}

func (g *gateway) last(t *testing.T) url.Values {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queries) == 0 {
		t.Fatal("the gateway got no request")
	}
	return g.queries[len(g.queries)-1]
}

// sendURL is the --sms URL of base with the query opts.
func sendURL(base, opts string) string {
	u, _ := url.Parse(base)
	u.User = url.UserPassword("verifyd", testPassword)
	u.Path = "/cgi-bin/sendsms"
	u.RawQuery = opts
	return u.String()
}

var now = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func newSender(t testing.TB, raw string, clock func() time.Time) *Sender {
	t.Helper()
	cfg, err := ParseURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	if clock == nil {
		clock = func() time.Time { return now }
	}
	s, err := New(cfg, Options{Signer: testSigner{}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

var refRE = regexp.MustCompile(`^kannel-[0-9a-f]{32}$`)

func TestSendRequest(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	s := newSender(t, sendURL(g.URL, "smsc=carrier1&priority=1&timeout=5s"), nil)

	for _, tc := range []struct {
		name, text string
		valid      time.Duration
		coding     string
		validity   string
	}{
		// validity is whole minutes, rounded down: the gateway must not
		// deliver the text after the code expired.
		{"GSM", "Your code is 123456 @ £5 {ok} €", 10*time.Minute + 59*time.Second, "0", "10"},
		{"UCS2", "Ваш код 123456", 10 * time.Minute, "2", "10"},
		{"Emoji", "Code 123456 🙂", 119 * time.Second, "2", "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids, err := s.Send(context.Background(), &verifyd.SMS{
				RequestID: "req-1", To: "447979080215", From: "MyBrand", Text: tc.text, ValidUntil: now.Add(tc.valid),
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) != 1 || !refRE.MatchString(ids[0]) {
				t.Fatalf("Send = %q, want one kannel-<32 hex> reference", ids)
			}
			q := g.last(t)
			want := url.Values{
				"username": {"verifyd"}, "password": {testPassword}, "from": {"MyBrand"}, "to": {"+447979080215"},
				"text": {tc.text}, "charset": {"UTF-8"}, "coding": {tc.coding}, "validity": {tc.validity},
				"smsc": {"carrier1"}, "priority": {"1"},
			}
			if q.Encode() != want.Encode() {
				t.Fatalf("sendsms query\n got %s\nwant %s", q.Encode(), want.Encode())
			}
		})
	}
}

// Kannel sends a numeric sender without a leading + as a national number;
// a phone number as sender id must go as international, as SMPP's sender
// sends it, and a short code (6 digits at most) and a name as they are.
func TestSendFromNumberIsInternational(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	s := newSender(t, sendURL(g.URL, ""), nil)
	for from, want := range map[string]string{
		"447700900000": "+447700900000", "+447700900000": "+447700900000", "84433": "84433", "MyBrand": "MyBrand", "Shop24": "Shop24",
	} {
		if _, err := s.Send(context.Background(), &verifyd.SMS{To: "447979080215", From: from, Text: "Code 123456"}); err != nil {
			t.Fatal(err)
		}
		if got := g.last(t).Get("from"); got != want {
			t.Errorf("from %q went as %q, want %q", from, got, want)
		}
	}
}

// Kannel's validity counts whole minutes: with less than one left, any
// validity it can be given outlives the code, so the text is not handed over.
func TestSendValidityNeverOutlivesTheCode(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	s := newSender(t, sendURL(g.URL, ""), nil)
	for _, left := range []time.Duration{59 * time.Second, 0, -time.Minute} {
		_, err := s.Send(context.Background(), &verifyd.SMS{
			To: "447979080215", From: "MyBrand", Text: "Code 123456", ValidUntil: now.Add(left),
		})
		var se *verifyd.SendError
		if !errors.As(err, &se) || se.Kind != verifyd.SendTemporary {
			t.Errorf("Send with %v left = %v, want a temporary failure", left, err)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queries) != 0 {
		t.Fatalf("%d texts handed to the gateway with less than a minute of the code left: validity %q",
			len(g.queries), g.queries[0].Get("validity"))
	}
}

func TestSendAsksForReports(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	s := newSender(t, sendURL(g.URL, "receipts=https://verifyd.example.com/base/"), nil)
	sms := &verifyd.SMS{RequestID: "req-1", To: "447979080215", From: "MyBrand", Text: "Code 123456", ValidUntil: now.Add(time.Minute)}
	ids, err := s.Send(context.Background(), sms)
	if err != nil {
		t.Fatal(err)
	}
	q := g.last(t)
	if q.Get("dlr-mask") != "19" {
		t.Fatalf("dlr-mask = %q, want 19 (delivered, not delivered, refused by the SMSC)", q.Get("dlr-mask"))
	}
	want := "https://verifyd.example.com/base/sms/receipts/kannel?ref=" + ids[0] +
		"&token=" + hex.EncodeToString(testSigner{}.ReceiptToken(ids[0])) + "&type=%d"
	if got := q.Get("dlr-url"); got != want {
		t.Fatalf("dlr-url\n got %s\nwant %s", got, want)
	}
	// What Kannel calls back is a report ParseReceipt takes.
	u, _ := url.Parse(strings.Replace(q.Get("dlr-url"), "%d", "1", 1))
	if r, ok, err := s.ParseReceipt(u.Query()); err != nil || !ok || r.CarrierID != ids[0] || r.State != verifyd.DeliveryDelivered {
		t.Fatalf("ParseReceipt of the DLR URL = %+v, %v, %v", r, ok, err)
	}

	again, err := s.Send(context.Background(), sms)
	if err != nil {
		t.Fatal(err)
	}
	if again[0] == ids[0] {
		t.Fatal("two sends made one reference")
	}

	t.Run("NoReceiptsOption", func(t *testing.T) {
		s := newSender(t, sendURL(g.URL, ""), nil)
		if _, err := s.Send(context.Background(), sms); err != nil {
			t.Fatal(err)
		}
		if q := g.last(t); q.Has("dlr-mask") || q.Has("dlr-url") {
			t.Fatalf("reports asked for without the receipts option: %s", q.Encode())
		}
	})
}

func TestSendAnswers(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	s := newSender(t, sendURL(g.URL, ""), nil)
	for _, tc := range []struct {
		name   string
		status int
		body   string
		ok     bool
		kind   verifyd.SendErrorKind
		reason string
	}{
		{"Accepted", 202, "0: Accepted for delivery", true, 0, ""},
		{"Queued", 202, "3: Queued for later delivery", true, 0, ""},
		{"OK", 200, "Sent.", true, 0, ""},
		{"Forbidden", 403, "Authorization failed for sendsms", false, verifyd.SendTemporary, "gateway refused the credentials (HTTP 403)"},
		{"NotRoutable", 403, "Not routable. Do not try again.", false, verifyd.SendPermanent,
			"gateway refused the message (HTTP 403): Not routable. Do not try again."},
		{"Unauthorized", 401, "", false, verifyd.SendTemporary, "gateway refused the credentials (HTTP 401)"},
		{"QueueFull", 503, "4: Temporal failure, try again later.", false, verifyd.SendThrottled, "gateway busy (HTTP 503): 4: Temporal failure, try again later."},
		{"BadDestination", 400, "Number(s) has/have been denied by white- and/or black-lists.", false, verifyd.SendPermanent,
			"gateway refused the message (HTTP 400): Number(s) has/have been denied by white- and/or black-lists."},
		{"BadDestinationEchoesIt", 400, "Receiver 447979080215 refused", false, verifyd.SendPermanent, "gateway refused the message (HTTP 400)"},
		{"Unprocessable", 422, "", false, verifyd.SendPermanent, "gateway refused the message (HTTP 422)"},
		{"ServerError", 500, "Sending failed.", false, verifyd.SendTemporary, "gateway answered HTTP 500: Sending failed."},
		{"BadGateway", 502, "<html>\x01</html>", false, verifyd.SendTemporary, "gateway answered HTTP 502"},
		{"NotFound", 404, "no such page", false, verifyd.SendTemporary, "gateway answered HTTP 404: no such page"},
		{"Redirect", 302, "", false, verifyd.SendTemporary, "gateway answered HTTP 302"},
		{"EchoesPassword", 500, "bad password " + testPassword, false, verifyd.SendTemporary, "gateway answered HTTP 500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g.answer(tc.status, tc.body)
			ids, err := s.Send(context.Background(), &verifyd.SMS{To: "447979080215", From: "MyBrand", Text: "Code 123456", ValidUntil: now.Add(time.Minute)})
			if tc.ok {
				if err != nil || len(ids) != 1 {
					t.Fatalf("Send = %q, %v; want a reference", ids, err)
				}
				return
			}
			var se *verifyd.SendError
			if !errors.As(err, &se) {
				t.Fatalf("Send = %q, %v; want a *SendError", ids, err)
			}
			if se.Kind != tc.kind || se.Reason != tc.reason {
				t.Fatalf("Send: kind %d reason %q, want %d %q", se.Kind, se.Reason, tc.kind, tc.reason)
			}
			if strings.Contains(err.Error(), testPassword) {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

// A redirect would carry the password in the query to wherever it points.
// Kannel reads every % of a DLR URL as one of its escapes (%A, %C, ...
// put in the report's own data) and %% as a %: a base whose path has
// %-escapes must reach verifyd as written.
func TestSendReportURLKeepsTheBasesEscapes(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	s := newSender(t, sendURL(g.URL, "receipts="+url.QueryEscape("https://verifyd.example.com/caf%C3%A9")), nil)
	ids, err := s.Send(context.Background(), &verifyd.SMS{To: "447979080215", From: "MyBrand", Text: "Code 123456"})
	if err != nil {
		t.Fatal(err)
	}
	want := "https://verifyd.example.com/caf%%C3%%A9/sms/receipts/kannel?ref=" + ids[0] +
		"&token=" + hex.EncodeToString(testSigner{}.ReceiptToken(ids[0])) + "&type=%d"
	if got := g.last(t).Get("dlr-url"); got != want {
		t.Fatalf("dlr-url\n got %s\nwant %s", got, want)
	}
}

func TestSendFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	elsewhere := newGateway(t)
	g := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/cgi-bin/sendsms", http.StatusFound))
	defer g.Close()
	s := newSender(t, sendURL(g.URL, ""), nil)
	if _, err := s.Send(context.Background(), &verifyd.SMS{To: "447979080215", From: "X1", Text: "Code 123456"}); err == nil {
		t.Fatal("a redirect was taken for an acceptance")
	}
	elsewhere.mu.Lock()
	defer elsewhere.mu.Unlock()
	if len(elsewhere.queries) != 0 {
		t.Fatal("the redirect was followed")
	}
}

func TestSendUnreachableAndReady(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	var mu sync.Mutex
	clock := now
	tick := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	s := newSender(t, sendURL("http://"+addr, ""), func() time.Time { mu.Lock(); defer mu.Unlock(); return clock })
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready before any send: %v", err)
	}
	_, err = s.Send(context.Background(), &verifyd.SMS{To: "447979080215", From: "X1", Text: "Code 123456"})
	var se *verifyd.SendError
	if !errors.As(err, &se) || se.Kind != verifyd.SendTemporary || se.Reason != "gateway unreachable" {
		t.Fatalf("Send to a closed port = %v, want temporary, gateway unreachable", err)
	}
	if strings.Contains(err.Error(), testPassword) || strings.Contains(err.Error(), "sendsms?") {
		t.Fatalf("the error quotes the request URL: %v", err)
	}
	if s.Ready() == nil {
		t.Fatal("Ready = nil after a send could not connect")
	}
	tick(30 * time.Second)
	if s.Ready() == nil {
		t.Fatal("Ready = nil 30 s after a send could not connect")
	}
	tick(31 * time.Second)
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready a minute after the failure with nothing sent since: %v", err)
	}

	// The gateway comes back: the next answer makes it ready at once.
	s2 := newSender(t, sendURL("http://"+addr, ""), nil)
	s2.Send(context.Background(), &verifyd.SMS{To: "447979080215", From: "X1", Text: "Code 123456"})
	if s2.Ready() == nil {
		t.Fatal("Ready = nil after a send could not connect")
	}
	g := newGateway(t)
	s2.cfg.Endpoint = g.URL + "/cgi-bin/sendsms"
	if _, err := s2.Send(context.Background(), &verifyd.SMS{To: "447979080215", From: "X1", Text: "Code 123456"}); err != nil {
		t.Fatal(err)
	}
	if err := s2.Ready(); err != nil {
		t.Fatalf("Ready after the gateway answered: %v", err)
	}
	// A gateway that answers with an error is reachable all the same.
	g.answer(500, "")
	s2.Send(context.Background(), &verifyd.SMS{To: "447979080215", From: "X1", Text: "Code 123456"})
	if err := s2.Ready(); err != nil {
		t.Fatalf("Ready after the gateway answered 500: %v", err)
	}
}

func TestSendTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	g := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer g.Close()
	defer close(release)
	s := newSender(t, sendURL(g.URL, "timeout=100ms"), nil)

	start := time.Now()
	_, err := s.Send(context.Background(), &verifyd.SMS{To: "447979080215", From: "X1", Text: "Code 123456"})
	var se *verifyd.SendError
	if !errors.As(err, &se) || se.Kind != verifyd.SendTemporary || se.Reason != "gateway did not answer in time" {
		t.Fatalf("Send to a gateway that never answers = %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Send took %v with timeout=100ms", took)
	}
	if strings.Contains(err.Error(), testPassword) {
		t.Fatalf("the error shows the password: %v", err)
	}

	// The caller's deadline bounds it too.
	s = newSender(t, sendURL(g.URL, "timeout=1m"), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := s.Send(ctx, &verifyd.SMS{To: "447979080215", From: "X1", Text: "Code 123456"}); err == nil {
		t.Fatal("Send past its context's deadline succeeded")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Send took %v past a 100ms context", took)
	}
}
