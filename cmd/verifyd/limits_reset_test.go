package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	nethttp "net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"verifyd"
	"verifyd/auth"
	"verifyd/http"
	"verifyd/otp"
	"verifyd/phone"
)

// desk is what support staff work with: a database with the account shop,
// the API on it, and the command line on it, both at the clock now.
type desk struct {
	t            *testing.T
	db           string
	now          time.Time
	api          nethttp.Handler
	user, secret string
}

// newDesk creates shop with settings and serves the API on its database,
// in process, so that a create and the command line see the same instant.
func newDesk(t *testing.T, settings ...string) *desk {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v.db")
	d := &desk{t: t, db: "sqlite:" + path, now: watchNow, user: "shop"}
	secret, err := d.cli("accounts", "create", "shop")
	if err != nil {
		t.Fatal(err)
	}
	d.secret = strings.TrimSpace(secret)
	if len(settings) > 0 {
		if _, err := d.cli(append([]string{"accounts", "set", "shop"}, settings...)...); err != nil {
			t.Fatal(err)
		}
	}
	store, err := openStore(t.Context(), database{kind: "sqlite", dsn: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	keyring, err := otp.NewKeyring(bytes.Repeat([]byte{7}, otp.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return d.now }
	d.api = http.NewServer(http.Config{
		Store:   store,
		Auth:    auth.NewChecker(store, clock, 30*time.Second),
		Keyring: keyring,
		Lookup:  phone.Lookup{},
		Now:     clock,
		Rand:    rand.NewChaCha8([32]byte{1}),
		Logger:  slog.New(slog.DiscardHandler),
	})
	return d
}

// cli runs a verifyd command on the desk's database at its clock.
func (d *desk) cli(args ...string) (string, error) {
	d.t.Helper()
	var out, errOut syncBuffer
	err := runWith(context.Background(), append(args, "--db", d.db), &env{stdout: &out, stderr: &errOut, now: func() time.Time { return d.now }})
	return out.String(), err
}

// show runs limits show and fails on error.
func (d *desk) show(number string) string {
	d.t.Helper()
	out, err := d.cli("limits", "show", "shop", number)
	if err != nil {
		d.t.Fatalf("limits show: %v", err)
	}
	return out
}

// call sends an API request as shop.
func (d *desk) call(method, path, body string) *httptest.ResponseRecorder {
	d.t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.SetBasicAuth(d.user, d.secret)
	w := httptest.NewRecorder()
	d.api.ServeHTTP(w, r)
	return w
}

// send creates a verification to number and returns the answer.
func (d *desk) send(number string) *httptest.ResponseRecorder {
	d.t.Helper()
	return d.call("POST", "/webapi/verify", `{"to": "`+number+`", "from": "Test"}`)
}

// sent creates a verification that must be accepted and returns its id.
func (d *desk) sent(number string) string {
	d.t.Helper()
	w := d.send(number)
	var v struct{ RequestID string }
	if w.Code != nethttp.StatusAccepted || json.Unmarshal(w.Body.Bytes(), &v) != nil {
		d.t.Fatalf("send to %s at %s: %d %s, want 202", number, stamp(d.now), w.Code, w.Body)
	}
	return v.RequestID
}

// refused creates a verification that must be throttled by the limit
// named, and returns its Retry-After.
func (d *desk) refused(number, limit string) string {
	d.t.Helper()
	w := d.send(number)
	if w.Code != nethttp.StatusBadRequest || !strings.Contains(w.Body.String(), "the "+limit+" limit") &&
		!strings.Contains(w.Body.String(), "wrong codes") {
		d.t.Fatalf("send to %s at %s: %d %s, want refused by the %s limit", number, stamp(d.now), w.Code, w.Body, limit)
	}
	return w.Header().Get("Retry-After")
}

// wantLines fails unless out has a line matching each pattern.
func wantLines(t *testing.T, what, out string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(`(?m)^` + p + `$`).MatchString(out) {
			t.Errorf("%s has no line like %s:\n%s", what, p, out)
		}
	}
}

func TestLimitsShowAndReset(t *testing.T) {
	t.Parallel()
	// A prefix limit of 7 an hour, so that a reset that emptied the shared
	// prefix bucket would let an eighth send in.
	d := newDesk(t, "failures=3", "limit.prefix=7/1h")
	const number, neighbour = "447979080215", "447979080299" // one prefix

	wantLines(t, "show before any send", d.show("+44 7979 080215"),
		`Limits of account shop on sends to 447979080215 \(GB\) as of 2026-03-01T12:00:00Z:`,
		`LIMIT\s+RULE\s+COUNTED NOW\s+A SEND NOW`,
		`number\s+5/10m\s+0 sends\s+passes`,
		`numberDaily\s+10/1d\s+0 sends\s+passes`,
		`prefix\s+7/1h\s+0 sends\s+passes`,
		`country\s+50000/1d\s+0 sends\s+passes`,
		`failures\s+3 wrong codes in a row, for 1d after the last\s+no wrong codes\s+passes`,
		`A send now passes\.`,
		`Not shown: the ip limit \(60/1m\), which counts by the client's address, not the number\.`,
		`Off for this account: account, accountDaily\.`,
		`Conversion watch \(watch=monitor\): no block on 44797908xxxx or GB\.`)

	first := d.sent(number)
	for range 4 {
		d.now = d.now.Add(time.Minute)
		d.sent(number)
	}
	d.sent(neighbour)
	// The first send, at 12:00, leaves the number's window at 12:10.
	d.now = watchNow.Add(5*time.Minute + 30*time.Second + 250*time.Millisecond)
	retry := d.refused(number, "number")
	if retry != "270" {
		t.Fatalf("Retry-After %s, want 270 (4m29.75s rounded up)", retry)
	}
	until := `refused for 4m29.75s, until 2026-03-01T12:10:00Z \(Retry-After: ` + retry + `\)`
	wantLines(t, "show after 5 sends", d.show(number),
		// The instant the waits count from, so that it plus a wait is its
		// until, not a fraction of a second off.
		`Limits of account shop on sends to 447979080215 \(GB\) as of 2026-03-01T12:05:30.25Z:`,
		`number\s+5/10m\s+5 sends\s+`+until,
		`numberDaily\s+10/1d\s+5 sends\s+passes`,
		`prefix\s+7/1h\s+6 sends\s+passes`,
		`country\s+50000/1d\s+6 sends\s+passes`,
		`A send now is refused by the number limit: `+until+`\.`)

	// Three wrong codes in a row refuse the number for a day.
	for range 3 {
		w := d.call("PUT", "/webapi/verify/"+first+"/validate", `{"code": "000000"}`)
		if w.Code != nethttp.StatusOK || !strings.Contains(w.Body.String(), `"CodeNotVerified"`) {
			t.Fatalf("a wrong code: %d %s", w.Code, w.Body)
		}
	}
	retry = d.refused(number, "failures")
	until = `refused for 24h0m0s, until 2026-03-02T12:05:30.25Z \(Retry-After: ` + retry + `\)`
	wantLines(t, "show after 3 wrong codes", d.show(number),
		`failures\s+3 wrong codes in a row, for 1d after the last\s+3 wrong codes in a row, the last at 2026-03-01T12:05:30.25Z\s+`+until,
		`A send now is refused by the failures limit: `+until+`\.`)

	out, err := d.cli("limits", "reset", "shop", "+44 7979 080215")
	if err != nil || strings.Count(out, "\n") != 1 || !strings.Contains(out, "account shop, number 447979080215: cleared "+
		"the number bucket (5 sends counted), the numberDaily bucket (5 sends counted), "+
		"the run of 3 wrong codes in a row, the last at 2026-03-01T12:05:30.25Z; ") {
		t.Fatalf("limits reset: %v %q", err, out)
	}
	wantLines(t, "show after the reset", d.show(number),
		`number\s+5/10m\s+0 sends\s+passes`,
		`numberDaily\s+10/1d\s+0 sends\s+passes`,
		`prefix\s+7/1h\s+6 sends\s+passes`,
		`country\s+50000/1d\s+6 sends\s+passes`,
		`failures\s+3 wrong codes in a row, for 1d after the last\s+no wrong codes\s+passes`,
		`A send now passes\.`)

	// The server reads the limits at each create: the reset holds at once.
	d.sent(number)
	// The prefix bucket, shared, kept the other sends: this is its 8th.
	retry = d.refused(neighbour, "prefix")
	wantLines(t, "show of the neighbour", d.show(neighbour),
		`prefix\s+7/1h\s+7 sends\s+refused for 54m29.75s, until 2026-03-01T13:00:00Z \(Retry-After: `+retry+`\)`,
		`country\s+50000/1d\s+7 sends\s+passes`)

	out, err = d.cli("limits", "reset", "shop", number)
	if err != nil || !strings.Contains(out, "cleared the number bucket (1 send counted), the numberDaily bucket (1 send counted);") {
		t.Fatalf("limits reset of one send: %v %q", err, out)
	}
	if out, err := d.cli("limits", "reset", "shop", number); err != nil ||
		!strings.Contains(out, "cleared nothing (no number or numberDaily bucket, no run of wrong codes)") {
		t.Fatalf("limits reset of nothing: %v %q", err, out)
	}
}

// The conversion watch's blocks on the number's prefix and country are
// rows of the table when the watch refuses, and a line when it only
// reports; limits=off says that nothing applies.
func TestLimitsShowWatchAndOff(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "v.db")
	db := "sqlite:" + path
	for _, args := range [][]string{{"accounts", "create", "shop"}, {"accounts", "set", "shop", "watch=on"}} {
		if _, err := runAt(t, append(args, "--db", db)...); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
	}
	store, err := openStore(t.Context(), database{kind: "sqlite", dsn: path})
	if err != nil {
		t.Fatal(err)
	}
	pumpInto(t, store, "shop", "44797908", "GB", 120)
	if _, err := verifyd.RunWatch(t.Context(), store, watchNow); err != nil {
		t.Fatal(err)
	}
	store.Close()
	show := func() string {
		t.Helper()
		out, err := runAt(t, "limits", "show", "shop", "447979080215", "--db", db)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	blocked := `blocked since 2026-03-01T12:00:00Z \(120 sends, 0 verified\)\s+refused for 24h0m0s, until 2026-03-02T12:00:00Z \(Retry-After: 86400\)`
	wantLines(t, "show with the watch on", show(),
		`watchPrefix\s+conversion watch on 44797908xxxx\s+`+blocked,
		`watchCountry\s+conversion watch on GB\s+`+blocked,
		`A send now is refused by the watchPrefix limit: refused for 24h0m0s, until 2026-03-02T12:00:00Z \(Retry-After: 86400\)\.`)

	if _, err := runAt(t, "accounts", "set", "shop", "watch=monitor", "--db", db); err != nil {
		t.Fatal(err)
	}
	out := show()
	wantLines(t, "show with the watch in monitor mode", out,
		`A send now passes\.`,
		`Conversion watch \(watch=monitor\): prefix 44797908xxxx blocked until 2026-03-02T12:00:00Z, reported only: it refuses nothing\.`,
		`Conversion watch \(watch=monitor\): country GB blocked until 2026-03-02T12:00:00Z, reported only: it refuses nothing\.`)
	if strings.Contains(out, "watchPrefix") {
		t.Errorf("a block reported only is a row of the table:\n%s", out)
	}

	if _, err := runAt(t, "accounts", "set", "shop", "limits=off", "--db", db); err != nil {
		t.Fatal(err)
	}
	wantLines(t, "show with limits=off", show(),
		`none: the account has limits=off, so nothing limits its sends \('verifyd accounts set shop limits=on' turns them on\)`)
}

func TestLimitsShowAndResetUsage(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + filepath.Join(t.TempDir(), "v.db")
	if _, err := runAt(t, "accounts", "create", "shop", "--db", db); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string // in the one line
	}{
		{[]string{"limits", "show"}, 2, "ACCOUNT and NUMBER"},
		{[]string{"limits", "reset", "shop"}, 2, "ACCOUNT and NUMBER"},
		{[]string{"limits", "show", "shop", "447979080215", "extra"}, 2, "ACCOUNT and NUMBER"},
		// The README's "+44 7979 080215", typed without quotes: the line
		// must say how to give it.
		{[]string{"limits", "reset", "shop", "+44", "7979", "080215"}, 2, `in quotes: "+44 7979 080215"`},
		{[]string{"limits", "show", "shop", "12"}, 2, "international form"},
		{[]string{"limits", "reset", "shop", "07979 080215"}, 2, "international form"},
		// An account the database does not hold is a failure, not a bad
		// command line: exit 1, as accounts disable, enable and set answer.
		{[]string{"limits", "show", "ghost", "447979080215"}, 1, `no account named "ghost"`},
		{[]string{"limits", "reset", "ghost", "447979080215"}, 1, `no account named "ghost"`},
		{[]string{"accounts", "disable", "ghost"}, 1, `no account named "ghost"`},
		{[]string{"limits", "reset", "bad:name", "447979080215"}, 2, "account name"},
		{[]string{"limits", "clear", "shop", "447979080215"}, 2, "status, show or reset"},
	} {
		code, stdout, stderr := runMain(t, nil, append(tc.args, "--db", db)...)
		if code != tc.code || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("verifyd %q: exit %d, stdout %q, stderr %q; want %d and one line that says %q", tc.args, code, stdout, stderr, tc.code, tc.want)
		}
	}
}

// A test number counts toward no limit and no limit refuses it, whatever
// its sends and wrong codes: show must not call it refused.
func TestLimitsShowTestNumber(t *testing.T) {
	t.Parallel()
	const test = "447979080299"
	d := newDesk(t, "failures=3", "testNumbers="+test+":code=123456")
	var id string
	for range 6 {
		id = d.sent(test)
	}
	for range 3 {
		if w := d.call("PUT", "/webapi/verify/"+id+"/validate", `{"code": "000000"}`); w.Code != nethttp.StatusOK {
			t.Fatalf("a wrong code: %d %s", w.Code, w.Body)
		}
	}
	d.sent(test) // the API lets it through
	out := d.show("+44 7979 080299")
	wantLines(t, "show of a test number", out,
		`Limits of account shop on sends to 447979080299 \(GB\) as of 2026-03-01T12:00:00Z:`,
		`none: 447979080299 is one of the account's testNumbers, whose sends count toward no limit and no limit refuses, whatever its sends and wrong codes`)
	if strings.Contains(out, "refused") {
		t.Errorf("show calls a test number refused:\n%s", out)
	}
}
