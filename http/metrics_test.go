package http

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"verifyd"
)

// recordingObserver keeps what the server told it, one line per event.
type recordingObserver struct {
	mu     sync.Mutex
	events []string
}

func (o *recordingObserver) add(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, fmt.Sprintf(format, args...))
}

func (o *recordingObserver) Request(route string, status int, d time.Duration) {
	o.add("request %s %d", route, status)
}

func (o *recordingObserver) Created(v *verifyd.Verification) {
	o.add("created %s %s %s", v.Country, v.NumberStatus, v.State)
}

func (o *recordingObserver) Throttled(limit string) { o.add("throttled %s", limit) }

func (o *recordingObserver) Validated(v *verifyd.Verification, status verifyd.Status) {
	o.add("validated %s %s %s", v.Country, status, v.State)
}

func (o *recordingObserver) Cancelled(v *verifyd.Verification) {
	o.add("cancelled %s %s", v.Country, v.State)
}

// take returns the events so far, without the request lines unless
// requests is set, and forgets them.
func (o *recordingObserver) take(requests bool) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, e := range o.events {
		if requests || !strings.HasPrefix(e, "request ") {
			out = append(out, e)
		}
	}
	o.events = nil
	return out
}

func withObserver(o Observer) envOption {
	return withConfig(func(cfg *Config) { cfg.Observer = o })
}

func TestObserverGetsEveryRequestByRoutePattern(t *testing.T) {
	t.Parallel()
	o := &recordingObserver{}
	e := newEnv(t, withObserver(o))
	vc := e.create(`{"to":"447979080215","from":"Test"}`)
	e.do("GET", "/WebApi/Verify/"+vc.RequestID+"/", "")
	e.doWith("GET", "/webapi/verify/"+vc.RequestID, "", nil)
	e.do("GET", "/nowhere/447979080215", "")
	e.do("GET", "/webapi/verify", "")
	e.do("GET", "/healthz?password=x", "")
	want := []string{
		"created GB On Pending",
		"request POST /webapi/verify 202",
		"request GET /webapi/verify/{id} 200",
		"request GET /webapi/verify/{id} 401",
		"request unmatched 404", // never the path: it could hold anything
		"request unmatched 405",
		"request unmatched 400",
	}
	if got := o.take(true); !slices.Equal(got, want) {
		t.Fatalf("events:\n%s", strings.Join(got, "\n"))
	}
}

func TestObserverGetsEachChange(t *testing.T) {
	t.Parallel()
	o := &recordingObserver{}
	e := newEnv(t, withObserver(o), withSettings(func(s *verifyd.Settings) { s.LimitsOff = true }))

	t.Run("Verified", func(t *testing.T) {
		id, code := e.sendCode("447979080215")
		e.validate(id, wrongCode(code))
		e.validate(id, code)
		e.validate(id, code) // finished: 204, no change to tell
		want := []string{"created GB On Pending", "validated GB CodeNotVerified Pending", "validated GB CodeVerified Verified"}
		if got := o.take(false); !slices.Equal(got, want) {
			t.Fatalf("events %q, want %q", got, want)
		}
	})
	t.Run("Locked", func(t *testing.T) {
		id, code := e.sendCode("33612345678")
		for range 5 {
			e.validate(id, wrongCode(code))
		}
		got := o.take(false)
		if len(got) != 6 || got[0] != "created FR On Pending" || got[5] != "validated FR CodeLocked Locked" {
			t.Fatalf("events %q", got)
		}
	})
	t.Run("Expired", func(t *testing.T) {
		id, code := e.sendCode("15417543010")
		e.advance(verifyd.DefaultValidity)
		e.validate(id, code)
		want := []string{"created US On Pending", "validated US CodeExpired Expired"}
		if got := o.take(false); !slices.Equal(got, want) {
			t.Fatalf("events %q, want %q", got, want)
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		id, _ := e.sendCode("447979080215")
		e.do("DELETE", "/webapi/verify/"+id, "")
		e.do("DELETE", "/webapi/verify/"+id, "") // already finished: nothing to tell
		want := []string{"created GB On Pending", "cancelled GB Cancelled"}
		if got := o.take(false); !slices.Equal(got, want) {
			t.Fatalf("events %q, want %q", got, want)
		}
	})
	t.Run("NotSent", func(t *testing.T) {
		e.create(`{"to":"` + deadNumber + `","from":"Test"}`)
		want := []string{"created GB Dead NotSent"}
		if got := o.take(false); !slices.Equal(got, want) {
			t.Fatalf("events %q, want %q", got, want)
		}
	})
	t.Run("RefusedCreateIsNotCreated", func(t *testing.T) {
		e.do("POST", "/webapi/verify", `{"to":"12","from":"Test"}`)
		if got := o.take(false); len(got) != 0 {
			t.Fatalf("events %q", got)
		}
	})
}

// wrongCode is a well-formed code other than code.
func wrongCode(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

func TestObserverNamesTheRefusingLimit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		limit  string
		limits map[string]string
		to     []string // the last one is refused
	}{
		{"number", nil, []string{"447979080215", "447979080215", "447979080215", "447979080215", "447979080215", "447979080215"}},
		{"numberDaily", map[string]string{"number": "off", "numberDaily": "1/1d"}, []string{"447979080215", "447979080215"}},
		{"prefix", map[string]string{"prefix": "1/1h"}, []string{"447979080215", "447979080216"}},
		{"country", map[string]string{"country": "2/1d"}, []string{"447979080215", "447979080216", "447979080217"}},
		{"account", map[string]string{"account": "1/1m"}, []string{"447979080215", "33612345678"}},
	} {
		t.Run(c.limit, func(t *testing.T) {
			t.Parallel()
			o := &recordingObserver{}
			e := newEnv(t, withObserver(o), withSettings(func(s *verifyd.Settings) { s.Limits = c.limits }))
			last := len(c.to) - 1
			for _, to := range c.to[:last] {
				e.create(`{"to":"` + to + `","from":"Test"}`)
			}
			o.take(false)
			if w := e.do("POST", "/webapi/verify", `{"to":"`+c.to[last]+`","from":"Test"}`); w.Code != 400 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if got, want := o.take(false), []string{"throttled " + c.limit}; !slices.Equal(got, want) {
				t.Fatalf("events %q, want %q", got, want)
			}
		})
	}
}

func TestMetricsRoute(t *testing.T) {
	t.Parallel()
	scrape := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write([]byte("verifyd_up 1\n"))
	})
	t.Run("ServedWithoutCredentials", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withConfig(func(cfg *Config) { cfg.Metrics = scrape }))
		w := e.doWith("GET", "/Metrics/", "", nil)
		if w.Code != 200 || w.Body.String() != "verifyd_up 1\n" {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
	t.Run("AbsentWithoutAHandler", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		if w := e.doWith("GET", "/metrics", "", nil); w.Code != 404 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}
