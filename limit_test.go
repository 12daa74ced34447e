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
