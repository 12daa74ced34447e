package verifyd

import (
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, out string
	}{
		{"5/10m", "5/10m"}, {"10/1d", "10/1d"}, {"100/1h", "100/1h"}, {"60/1m", "60/1m"},
		{"3/90s", "3/1m30s"}, {"7/36h", "7/36h"}, {"off", "off"}, {"2/48h", "2/2d"},
	} {
		r, err := ParseRate(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if got := r.String(); got != tc.out {
			t.Errorf("ParseRate(%q).String() = %q, want %q", tc.in, got, tc.out)
		}
	}
	for _, bad := range []string{"", "5", "x/1m", "0/1m", "5/0s", "5/1x", "-1/1m", "5/500ms"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) took it", bad)
		}
	}
}

func TestLimitTake(t *testing.T) {
	t.Parallel()
	l := Limit{Name: "number", Rate: Rate{Count: 5, Per: 10 * time.Minute}, Property: "to"}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var tat time.Time
	for i := range 5 {
		next, _, ok := l.Take(tat, now)
		if !ok {
			t.Fatalf("send %d refused", i+1)
		}
		tat = next
	}
	_, wait, ok := l.Take(tat, now)
	if ok || wait != 2*time.Minute {
		t.Fatalf("6th send: ok=%v wait=%v, want refused for 2m", ok, wait)
	}
	if _, _, ok := l.Take(tat, now.Add(wait-time.Second)); ok {
		t.Fatal("allowed a second before the wait ended")
	}
	if _, _, ok := l.Take(tat, now.Add(wait+time.Second)); !ok {
		t.Fatal("refused a second after the wait ended")
	}
	e := l.Throttled(wait - 300*time.Millisecond)
	if e.RetryAfter != 2*time.Minute || e.Limit != "number" || e.Failures[0].Property != "to" ||
		e.Failures[0].Details != "Too many codes were requested (the number limit is 5/10m); retry after 120 seconds." {
		t.Fatalf("Throttled: %+v", e)
	}
}

// TestIPLimitKeysIPv6ByItsSlash64: a client holding an IPv6 /64 (what one
// subscriber or host is given) could rotate its address on every send and
// never meet the per-IP limit; the limit counts the /64.
func TestIPLimitKeysIPv6ByItsSlash64(t *testing.T) {
	t.Parallel()
	a := &Account{ID: 7} // the default ip limit, 60 a minute
	n := Number{Digits: "447979080215", Region: "GB"}
	key := func(ip string) string {
		for _, l := range SendLimits(a, n, ip) {
			if l.Name == "ip" {
				return l.Key
			}
		}
		t.Fatalf("no ip limit for %q", ip)
		return ""
	}
	if k1, k2 := key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"); k1 != k2 || k1 != "7:ip:2001:db8:1:2::/64" {
		t.Errorf("two addresses of one /64: %q and %q, want both 7:ip:2001:db8:1:2::/64", k1, k2)
	}
	if k1, k2 := key("2001:db8:1:2::1"), key("2001:db8:1:3::1"); k1 == k2 {
		t.Errorf("two /64s share the key %q", k1)
	}
	if k := key("192.0.2.7"); k != "7:ip:192.0.2.7" {
		t.Errorf("IPv4: %q, want 7:ip:192.0.2.7", k)
	}
}
