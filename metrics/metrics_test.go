package metrics_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"verifyd"
	"verifyd/auth"
	"verifyd/delivery"
	vhttp "verifyd/http"
	"verifyd/inbox"
	"verifyd/metrics"
	"verifyd/otp"
	"verifyd/smpp"
	"verifyd/sqlite"
)

var _ vhttp.Observer = (*metrics.Metrics)(nil)

// env is an API server over a fresh SQLite store, counted by a Metrics on
// its own registry and serving /metrics.
type env struct {
	t       *testing.T
	store   *sqlite.Store
	keyring *otp.Keyring
	reg     *prometheus.Registry
	m       *metrics.Metrics
	srv     http.Handler

	user, secret string
}

func newEnv(t *testing.T, settings verifyd.Settings) *env {
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
	a := &verifyd.Account{Name: "app", Settings: settings, Created: time.Now()}
	secret, err := auth.SetSecret(a, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	e := &env{t: t, store: store, keyring: keyring, reg: reg, m: m, user: a.Name, secret: secret}
	e.srv = vhttp.NewServer(vhttp.Config{
		Store:    store,
		Auth:     auth.NewChecker(store, time.Now, time.Minute),
		Keyring:  keyring,
		Observer: m,
		Metrics:  metrics.Handler(reg),
	})
	return e
}

// do sends a request with the account's credentials and returns the status
// and body.
func (e *env) do(method, target, body string) (int, string) {
	e.t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.SetBasicAuth(e.user, e.secret)
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// create sends a create to number and returns the request id.
func (e *env) create(to string) string {
	e.t.Helper()
	status, body := e.do("POST", "/webapi/verify", `{"to":"`+to+`","from":"Test"}`)
	if status != http.StatusAccepted {
		e.t.Fatalf("create %s: %d %s", to, status, body)
	}
	_, id, _ := strings.Cut(body, `"requestId":"`)
	id, _, _ = strings.Cut(id, `"`)
	return id
}

// code claims the queued messages, as the delivery worker would, and
// returns the code of the one for id.
func (e *env) code(id string) string {
	e.t.Helper()
	ms, err := e.store.ClaimMessages(context.Background(), time.Now(), time.Minute, 100)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, m := range ms {
		if m.RequestID == id {
			text, err := e.keyring.Open(m.RequestID, m.Sealed)
			if err != nil {
				e.t.Fatal(err)
			}
			return strings.TrimPrefix(string(text), "Your verification code is ")
		}
	}
	e.t.Fatalf("no message queued for %s", id)
	return ""
}

// scrape fetches /metrics through the API server, without credentials.
func (e *env) scrape() []sample {
	e.t.Helper()
	r := httptest.NewRequest("GET", "/metrics", nil)
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		e.t.Fatalf("GET /metrics: %d %v", w.Code, w.Header())
	}
	return parseScrape(e.t, w.Body)
}

// want fails the test unless the scrape has the series at v.
func want(t *testing.T, samples []sample, name string, labels map[string]string, v float64) {
	t.Helper()
	got, ok := value(samples, name, labels)
	if !ok {
		t.Errorf("no series %s%v", name, labels)
	} else if got != v {
		t.Errorf("%s%v = %v, want %v", name, labels, got, v)
	}
}

func TestScrapeCountsWhatTheAPIDid(t *testing.T) {
	t.Parallel()
	e := newEnv(t, verifyd.Settings{Limits: map[string]string{"number": "2/10m"}})

	verified := e.create("447979080215")
	code := e.code(verified)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	e.do("PUT", "/webapi/verify/"+verified+"/validate", `{"code":"`+wrong+`"}`)
	e.do("POST", "/webapi/verify/"+verified+"/validate", `{"code":"`+code+`"}`)
	cancelled := e.create("447979080215")
	e.do("DELETE", "/webapi/verify/"+cancelled, "")
	if status, body := e.do("POST", "/webapi/verify", `{"to":"447979080215","from":"Test"}`); status != 400 || !strings.Contains(body, "Throttled") {
		t.Fatalf("third create to one number: %d %s", status, body)
	}
	e.create("33612345678")
	e.do("POST", "/webapi/verify", `{"to":"12","from":"Test"}`)

	s := e.scrape()
	want(t, s, "verifyd_http_requests_total", l("route", "POST /webapi/verify", "status", "202"), 3)
	want(t, s, "verifyd_http_requests_total", l("route", "POST /webapi/verify", "status", "400"), 2)
	want(t, s, "verifyd_http_requests_total", l("route", "PUT /webapi/verify/{id}/validate", "status", "200"), 1)
	want(t, s, "verifyd_http_requests_total", l("route", "POST /webapi/verify/{id}/validate", "status", "200"), 1)
	want(t, s, "verifyd_http_requests_total", l("route", "DELETE /webapi/verify/{id}", "status", "204"), 1)
	want(t, s, "verifyd_http_request_duration_seconds_count", l("route", "POST /webapi/verify"), 5)
	want(t, s, "verifyd_verifications_created_total", l("country", "GB", "number_status", "On"), 2)
	want(t, s, "verifyd_verifications_created_total", l("country", "FR", "number_status", "On"), 1)
	want(t, s, "verifyd_verifications_finished_total", l("country", "GB", "state", "Verified"), 1)
	want(t, s, "verifyd_verifications_finished_total", l("country", "GB", "state", "Cancelled"), 1)
	want(t, s, "verifyd_validations_total", l("status", "CodeNotVerified"), 1)
	want(t, s, "verifyd_validations_total", l("status", "CodeVerified"), 1)
	want(t, s, "verifyd_validations_total", l("status", "CodeLocked"), 0)
	want(t, s, "verifyd_sends_refused_total", l("limit", "number"), 1)
	want(t, s, "verifyd_sends_refused_total", l("limit", "prefix"), 0)
}

// digitRun is what a phone number looks like inside a label value.
var digitRun = regexp.MustCompile(`[0-9]{7,}`)

func TestNoLabelHoldsANumberOrACode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, verifyd.Settings{LimitsOff: true})
	e.m.WatchSMPP(func() smpp.Stats { return smpp.Stats{Binds: 1, BindsUp: 1, Window: 50} })
	numbers := []string{"447979080215", "33612345678", "15417543010", "4915123456789"}
	var secrets []string
	for _, n := range numbers {
		id := e.create(n)
		code := e.code(id)
		e.do("PUT", "/webapi/verify/"+id+"/validate", `{"code":"`+code+`"}`)
		secrets = append(secrets, n, n[len(n)-6:], code)
	}
	// Paths that carry a number where an id or a route would be.
	e.do("GET", "/webapi/verify/447979080215", "")
	e.do("PUT", "/webapi/verify/447979080215/validate", `{"code":"123456"}`)
	e.do("GET", "/447979080215", "")
	e.do("POST", "/webapi/verify/+447979080215", "")
	e.do("GET", "/inbox/messages?to=447979080215", "")

	samples := e.scrape()
	if len(samples) < 50 {
		t.Fatalf("only %d samples scraped", len(samples))
	}
	for _, s := range samples {
		for name, v := range s.labels {
			if digitRun.MatchString(v) {
				t.Errorf("%s{%s=%q}: a run of 7 or more digits", s.name, name, v)
			}
			for _, secret := range secrets {
				if strings.Contains(v, secret) {
					t.Errorf("%s{%s=%q} holds %q", s.name, name, v, secret)
				}
			}
		}
	}
	// The walk must have met the labels that could leak, to mean anything.
	for _, n := range []string{"route", "status", "country", "number_status"} {
		found := false
		for _, s := range samples {
			_, ok := s.labels[n]
			found = found || ok
		}
		if !found {
			t.Errorf("no label %q in the scrape", n)
		}
	}
}

func TestDeliveryOutcomesAreCounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, verifyd.Settings{LimitsOff: true})
	ctx := context.Background()
	msgs := e.m.Messages(e.store)
	ids := map[string]string{}
	for _, o := range []string{"Submitted", "Retry", "Failed", "Expired"} {
		ids[o] = e.create("447979080215")
	}
	claimed, err := msgs.ClaimMessages(ctx, time.Now(), time.Minute, 10)
	if err != nil || len(claimed) != 4 {
		t.Fatalf("claimed %d: %v", len(claimed), err)
	}
	var at time.Time
	for _, m := range claimed {
		if m.RequestID == ids["Submitted"] {
			at = m.Created.Add(1500 * time.Millisecond)
		}
	}
	results := []verifyd.MessageResult{
		{RequestID: ids["Submitted"], State: verifyd.DeliverySubmitted, CarrierIDs: []string{"c1"}, At: at},
		{RequestID: ids["Retry"], State: verifyd.DeliveryQueued, Error: "ESME_RMSGQFUL", NextAttempt: at.Add(time.Second), At: at},
		{RequestID: ids["Failed"], State: verifyd.DeliveryFailed, Error: "ESME_RINVDSTADR", At: at},
		{RequestID: ids["Expired"], State: verifyd.DeliveryExpired, At: at},
	}
	if err := msgs.FinishMessages(ctx, results); err != nil {
		t.Fatal(err)
	}
	if err := msgs.RecordReceipt(ctx, verifyd.Receipt{CarrierID: "c1", State: verifyd.DeliveryDelivered, At: at}); err != nil {
		t.Fatal(err)
	}

	s := e.scrape()
	for _, o := range []string{"Submitted", "Retry", "Failed", "Expired"} {
		want(t, s, "verifyd_delivery_handovers_total", l("outcome", o), 1)
	}
	want(t, s, "verifyd_delivery_receipts_total", l("state", "Delivered"), 1)
	want(t, s, "verifyd_delivery_submit_seconds_count", nil, 1)
	want(t, s, "verifyd_delivery_submit_seconds_sum", nil, 1.5)
	want(t, s, "verifyd_delivery_submit_seconds_bucket", l("le", "1"), 0)
	want(t, s, "verifyd_delivery_submit_seconds_bucket", l("le", "2.5"), 1)

	t.Run("NothingCountedWhenTheStoreFails", func(t *testing.T) {
		e.store.Close()
		if err := msgs.FinishMessages(ctx, results[:1]); err == nil {
			t.Fatal("finishing on a closed store succeeded")
		}
		if err := msgs.RecordReceipt(ctx, verifyd.Receipt{CarrierID: "c2", State: verifyd.DeliveryDelivered, At: at}); err == nil {
			t.Fatal("a receipt on a closed store succeeded")
		}
		s := e.scrape()
		want(t, s, "verifyd_delivery_handovers_total", l("outcome", "Submitted"), 1)
		want(t, s, "verifyd_delivery_receipts_total", l("state", "Delivered"), 1)
	})
}

// Through the real worker and the dev inbox, every message sent is one
// Delivered hand-over and one submit timing; the inbox sends no receipts.
func TestDeliveryThroughTheWorker(t *testing.T) {
	t.Parallel()
	e := newEnv(t, verifyd.Settings{LimitsOff: true})
	msgs := e.m.Messages(e.store)
	w := delivery.New(delivery.Config{
		Store:  msgs,
		Sender: inbox.New(e.store, e.keyring, time.Now),
		Opener: e.keyring,
		Now:    time.Now,
		Poll:   10 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	for range 3 {
		e.create("447979080215")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := e.scrape()
		n, _ := value(s, "verifyd_delivery_submit_seconds_count", nil)
		if n == 3 {
			want(t, s, "verifyd_delivery_handovers_total", l("outcome", "Delivered"), 3)
			want(t, s, "verifyd_delivery_handovers_total", l("outcome", "Submitted"), 0)
			if n, ok := value(s, "verifyd_delivery_receipts_total", l("state", "Delivered")); ok && n != 0 {
				t.Errorf("%v receipts recorded for inbox messages", n)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v submit timings after 10 s, want 3", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSMPPStatsAreReadAtScrape(t *testing.T) {
	t.Parallel()
	e := newEnv(t, verifyd.Settings{})
	calls := 0
	st := smpp.Stats{Binds: 4, BindsUp: 3, Window: 150, InFlight: 17, Throttles: 5, QueueFull: 2, Reconnects: 9, Submitted: 1234, Receipts: 1200}
	e.m.WatchSMPP(func() smpp.Stats { calls++; return st })
	s := e.scrape()
	if calls != 1 {
		t.Fatalf("stats read %d times in one scrape", calls)
	}
	for name, v := range map[string]float64{
		"verifyd_smpp_binds": 4, "verifyd_smpp_binds_up": 3, "verifyd_smpp_window_slots": 150,
		"verifyd_smpp_window_in_use": 17, "verifyd_smpp_throttles_total": 5, "verifyd_smpp_queue_full_total": 2,
		"verifyd_smpp_reconnects_total": 9, "verifyd_smpp_submitted_total": 1234, "verifyd_smpp_receipts_total": 1200,
	} {
		want(t, s, name, nil, v)
	}
	st.BindsUp, st.Throttles = 0, 6
	s = e.scrape()
	want(t, s, "verifyd_smpp_binds_up", nil, 0)
	want(t, s, "verifyd_smpp_throttles_total", nil, 6)
}

func TestSQLiteWriterCountsFollowTheWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t, verifyd.Settings{})
	e.m.WatchSQLite(e.store.WriteStats)
	before := e.scrape()
	for _, to := range []string{"447979080215", "447979080216", "447979080217"} {
		e.create(to)
	}
	after := e.scrape()
	grew := func(name string) float64 {
		t.Helper()
		a, ok := value(after, name, nil)
		b, _ := value(before, name, nil)
		if !ok {
			t.Fatalf("no series %s", name)
		}
		return a - b
	}
	if n := grew("verifyd_sqlite_writes_total"); n < 3 {
		t.Errorf("writes grew by %v over 3 creates", n)
	}
	if n := grew("verifyd_sqlite_commit_groups_total"); n < 1 || n > grew("verifyd_sqlite_writes_total") {
		t.Errorf("groups grew by %v", n)
	}
	if busy, commit := grew("verifyd_sqlite_writer_busy_seconds_total"), grew("verifyd_sqlite_commit_seconds_total"); commit <= 0 || busy < commit {
		t.Errorf("busy grew by %v s and committing by %v s", busy, commit)
	}
}

func TestEveryMetricIsNamedVerifyd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, verifyd.Settings{})
	e.m.WatchSMPP(func() smpp.Stats { return smpp.Stats{} })
	e.m.WatchSQLite(e.store.WriteStats)
	e.create("447979080215")
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) < 15 {
		t.Fatalf("only %d metric families", len(mfs))
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "verifyd_") {
			t.Errorf("metric %q is not named verifyd_...", mf.GetName())
		}
		if mf.GetHelp() == "" {
			t.Errorf("metric %q has no help", mf.GetName())
		}
	}
}

func TestNewPanicsOnARegistryAlreadyUsed(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	metrics.New(reg)
	defer func() {
		if recover() == nil {
			t.Fatal("registering twice did not panic")
		}
	}()
	metrics.New(reg)
}
