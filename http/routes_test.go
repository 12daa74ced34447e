package http

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"verifyd"
)

func TestPathsIgnoreCaseAndTrailingSlash(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, p := range []string{"/WebApi/Verify", "/webapi/verify/", "/WEBAPI/VERIFY/SENDCODE/", "//webapi//verify"} {
		if w := e.do("POST", p, `{"to":"447979080215","from":"Test"}`); w.Code != http.StatusAccepted {
			t.Errorf("%s: %d %s", p, w.Code, w.Body)
		}
	}
}

func TestUnroutedAnswersJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t.Run("NotFound", func(t *testing.T) {
		w := e.do("GET", "/nowhere", "")
		var body errorBody
		decodeInto(t, w, &body)
		if w.Code != 404 || body.Code != verifyd.ENOTFOUND {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
	t.Run("MethodNotAllowed", func(t *testing.T) {
		w := e.do("GET", "/webapi/verify", "")
		var body errorBody
		decodeInto(t, w, &body)
		if w.Code != 405 || w.Header().Get("Allow") != "POST" {
			t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
		}
	})
	t.Run("InboxOutsideDevMode", func(t *testing.T) {
		for _, p := range []string{"/inbox", "/inbox/messages"} {
			if w := e.do("GET", p, ""); w.Code != 404 {
				t.Fatalf("%s: %d", p, w.Code)
			}
		}
	})
}

func TestBodyTooLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	big := `{"to":"447979080215","from":"Test","pad":"` + strings.Repeat("x", 64<<10) + `"}`
	for _, p := range []string{"/webapi/verify", "/webapi/verify/0bd57dc3-580c-4c1d-8aee-2ff79bd8633c/validate"} {
		w := e.do("POST", p, big)
		if got := failures(t, w); w.Code != 413 || len(got) != 1 || got[0] != ":InvalidJson" {
			t.Fatalf("%s: %d %v", p, w.Code, got)
		}
	}
	// Exactly 64 KiB is still read.
	edge := `{"to":"447979080215","from":"Test","pad":"`
	edge += strings.Repeat("x", 64<<10-len(edge)-2) + `"}`
	if w := e.do("POST", "/webapi/verify", edge); w.Code != http.StatusAccepted {
		t.Fatalf("a 64 KiB body: %d %s", w.Code, w.Body)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	t.Run("Healthz", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		if w := e.doWith("GET", "/healthz", "", nil); w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
	t.Run("ReadyzUsesStorePingByDefault", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		if w := e.doWith("GET", "/readyz/", "", nil); w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
	t.Run("ErrNotReady", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withConfig(func(cfg *Config) {
			cfg.Ready = func(context.Context) error { return errors.New("smpp: not bound to smsc.example:2775") }
		}))
		w := e.doWith("GET", "/readyz", "", nil)
		var body errorBody
		decodeInto(t, w, &body)
		if w.Code != 503 || body.Code != verifyd.EUNAVAILABLE || strings.Contains(w.Body.String(), "smsc") {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}

func TestInternalErrorsAreNotEchoed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(cfg *Config) { cfg.Lookup = failingLookup{} }))
	w := e.do("POST", "/webapi/verify", `{"to":"447979080215","from":"Test"}`)
	var body errorBody
	decodeInto(t, w, &body)
	if w.Code != 500 || body.Message != "internal error" || strings.Contains(w.Body.String(), "hlr") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	e.logMu.Lock()
	defer e.logMu.Unlock()
	if !strings.Contains(e.logs.String(), "hlr gateway exploded") {
		t.Fatalf("the cause was not logged:\n%s", e.logs.String())
	}
}

func TestPanicIsA500(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(cfg *Config) { cfg.Lookup = panickingLookup{} }))
	w := e.do("POST", "/webapi/verify", `{"to":"447979080215","from":"Test"}`)
	if w.Code != 500 || !strings.Contains(w.Body.String(), `"internal error"`) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

type failingLookup struct{}

func (failingLookup) LookupNumber(context.Context, verifyd.Number) (verifyd.NumberStatus, error) {
	return "", errors.New("hlr gateway exploded")
}

type panickingLookup struct{}

func (panickingLookup) LookupNumber(context.Context, verifyd.Number) (verifyd.NumberStatus, error) {
	panic("lookup bug")
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if got := e.srv.clientIP(&http.Request{RemoteAddr: "203.0.113.9:5000"}); got != "" {
		t.Fatalf("without trusted proxies: %q, want none", got)
	}
	e.srv.cfg.TrustedProxies = mustPrefixes("10.0.0.0/8")
	for _, c := range []struct{ peer, xff, want string }{
		{"203.0.113.9:5000", "1.2.3.4", "203.0.113.9"},
		{"10.0.0.2:5000", "198.51.100.7", "198.51.100.7"},
		{"10.0.0.2:5000", "6.6.6.6, 198.51.100.7, 10.0.0.3", "198.51.100.7"},
		{"10.0.0.2:5000", "", "10.0.0.2"},
		{"10.0.0.2:5000", "junk", "10.0.0.2"},
	} {
		r := &http.Request{RemoteAddr: c.peer, Header: http.Header{}}
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := e.srv.clientIP(r); got != c.want {
			t.Errorf("peer %s, XFF %q: %q, want %q", c.peer, c.xff, got, c.want)
		}
	}
}

func mustPrefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestOneLogLinePerRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	vc := e.create(`{"to":"447979080215","from":"Test"}`)
	e.do("GET", "/webapi/verify/"+vc.RequestID+"?trace=abc123", "")
	e.logMu.Lock()
	lines := strings.Split(strings.TrimSpace(e.logs.String()), "\n")
	e.logMu.Unlock()
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	var create, get map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &create); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &get); err != nil {
		t.Fatal(err)
	}
	if create["route"] != "POST /webapi/verify" || create["status"] != 202.0 || create["to"] != "44*******215" ||
		create["requestId"] != vc.RequestID || create["account"] != "app" || create["id"] == get["id"] {
		t.Fatalf("create line = %v", create)
	}
	if get["route"] != "GET /webapi/verify/{id}" || get["status"] != 200.0 || strings.Contains(lines[1], "abc123") {
		t.Fatalf("get line = %s", lines[1])
	}
	e.noLeaks("447979080215", e.code(vc.RequestID))
}

// A validate's line says the HTTP status and the verification's answer
// under two keys: one key twice would leave a reader only the last.
func TestValidateLogLineKeepsTheHTTPStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	vc := e.create(`{"to":"447979080215","from":"Test"}`)
	e.do("PUT", "/webapi/verify/"+vc.RequestID+"/validate", `{"code":"`+e.code(vc.RequestID)+`"}`)
	e.logMu.Lock()
	lines := strings.Split(strings.TrimSpace(e.logs.String()), "\n")
	e.logMu.Unlock()
	last := lines[len(lines)-1]
	if n := strings.Count(last, `"status":`); n != 1 {
		t.Fatalf("%d status keys in %s", n, last)
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(last), &line); err != nil {
		t.Fatal(err)
	}
	if line["status"] != 200.0 || line["result"] != "CodeVerified" {
		t.Fatalf("validate line = %s", last)
	}
}
