package verifyd

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestWatchJudge(t *testing.T) {
	t.Parallel()
	p := Settings{}.WatchPolicy() // 100 sends, 20%
	for _, c := range []struct {
		name            string
		sends, verified int
		want            Verdict
	}{
		{"BlockNoneVerified", 200, 0, VerdictBlock},
		{"BlockJustUnder", 100, 19, VerdictBlock},
		{"NearAtTheThreshold", 100, 20, VerdictNear},
		{"NearUnderHalfAgain", 100, 29, VerdictNear},
		{"OKHalfAgain", 100, 30, VerdictOK},
		{"OKSixtyPercent", 200, 120, VerdictOK},
		{"NearSmallSampleUnder", 50, 9, VerdictNear},
		{"OKSmallSampleAbove", 50, 10, VerdictOK},
		{"OKTooSmallToTell", 49, 0, VerdictOK},
	} {
		if got := p.Judge(Conversion{Sends: c.sends, Verified: c.verified}); got != c.want {
			t.Errorf("%s: Judge(%d sends, %d verified) = %v, want %v", c.name, c.sends, c.verified, got, c.want)
		}
	}
}

func TestWithCountriesSumsPrefixesPerCountry(t *testing.T) {
	t.Parallel()
	got := WithCountries([]Conversion{
		{Kind: WatchPrefix, Subject: "44770091", Country: "GB", Sends: 10, Verified: 9},
		{Kind: WatchPrefix, Subject: "33612345", Country: "FR", Sends: 5, Verified: 1},
		{Kind: WatchPrefix, Subject: "44770090", Country: "GB", Sends: 200},
	})
	want := []Conversion{
		{Kind: WatchPrefix, Subject: "33612345", Country: "FR", Sends: 5, Verified: 1},
		{Kind: WatchPrefix, Subject: "44770090", Country: "GB", Sends: 200},
		{Kind: WatchPrefix, Subject: "44770091", Country: "GB", Sends: 10, Verified: 9},
		{Kind: WatchCountry, Subject: "FR", Country: "FR", Sends: 5, Verified: 1},
		{Kind: WatchCountry, Subject: "GB", Country: "GB", Sends: 210, Verified: 9},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("WithCountries:\n got %+v\nwant %+v", got, want)
	}
}

func TestFailuresWait(t *testing.T) {
	t.Parallel()
	l := Limit{Kind: LimitFailures, Rate: Rate{Count: 100, Per: 24 * time.Hour}}
	last := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name     string
		failures int
		at       time.Duration // after last
		wait     time.Duration
		over     bool
	}{
		{"NoRun", 0, 0, 0, false},
		{"ShortRun", 99, time.Second, 0, false},
		{"FullRun", 100, time.Hour, 23 * time.Hour, false},
		{"LongerRun", 150, 0, 24 * time.Hour, false},
		{"LastSecond", 100, 24*time.Hour - time.Second, time.Second, false},
		{"CooldownOver", 100, 24 * time.Hour, 0, true},
		{"ShortRunOver", 3, 25 * time.Hour, 0, true},
	} {
		wait, over := l.FailuresWait(c.failures, last, last.Add(c.at))
		if wait != c.wait || over != c.over {
			t.Errorf("%s: FailuresWait = %v, %v; want %v, %v", c.name, wait, over, c.wait, c.over)
		}
	}
}

func TestSetAbuseSettings(t *testing.T) {
	t.Parallel()
	var s Settings
	for _, kv := range [][2]string{
		{"failures", "50"}, {"failures.cooldown", "2d"}, {"watch", "ON"}, {"watch.minSends", "40"},
		{"watch.minRate", "35%"}, {"watch.cooldown", "6h"},
	} {
		if err := s.Set(kv[0], kv[1]); err != nil {
			t.Fatalf("Set(%s=%s): %v", kv[0], kv[1], err)
		}
	}
	if max, cooldown, on := s.Failures(); max != 50 || cooldown != 48*time.Hour || !on {
		t.Fatalf("Failures() = %d, %v, %v", max, cooldown, on)
	}
	want := WatchPolicy{Mode: WatchOn, MinSends: 40, MinRate: 0.35, Cooldown: 6 * time.Hour}
	if got := s.WatchPolicy(); got != want {
		t.Fatalf("WatchPolicy() = %+v, want %+v", got, want)
	}
	// Kept as JSON and read back alike, periods in their written form.
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"failureCooldown":"2d"`) || !strings.Contains(string(b), `"watchCooldown":"6h"`) {
		t.Fatalf("JSON %s", b)
	}
	var back Settings
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, s) {
		t.Fatalf("read back %+v (%v), want %+v", back, err, s)
	}

	if err := s.Set("failures", "off"); err != nil {
		t.Fatal(err)
	}
	if _, _, on := s.Failures(); on {
		t.Fatal("failures=off left the rule on")
	}
	s.LimitsOff = true
	if p := s.WatchPolicy(); p.Mode != WatchOff {
		t.Fatalf("limits=off leaves the watch %s", p.Mode)
	}

	for _, kv := range [][2]string{
		{"failures", "0"}, {"failures", "1001"}, {"failures.cooldown", "500ms"}, {"watch", "loud"},
		{"watch.minSends", "0"}, {"watch.minRate", "0"}, {"watch.minRate", "120%"}, {"watch.minRate", "NaN"},
		{"watch.cooldown", "x"},
	} {
		if err := s.Set(kv[0], kv[1]); err == nil {
			t.Errorf("Set(%s=%s) took it", kv[0], kv[1])
		}
	}
}

func TestDefaultsOfAbuseSettings(t *testing.T) {
	t.Parallel()
	var s Settings
	if max, cooldown, on := s.Failures(); max != 100 || cooldown != 24*time.Hour || !on {
		t.Fatalf("Failures() = %d, %v, %v; want 100, 24h, on", max, cooldown, on)
	}
	want := WatchPolicy{Mode: WatchMonitor, MinSends: 100, MinRate: 0.2, Cooldown: 24 * time.Hour}
	if got := s.WatchPolicy(); got != want {
		t.Fatalf("WatchPolicy() = %+v, want %+v", got, want)
	}
	keys := strings.Join(SettingKeys(), " ")
	for _, k := range []string{"failures", "failures.cooldown", "watch", "watch.minSends", "watch.minRate", "watch.cooldown"} {
		if !strings.Contains(" "+keys+" ", " "+k+" ") {
			t.Errorf("SettingKeys does not list %s", k)
		}
	}
}

func TestSendLimitsFollowTheSettings(t *testing.T) {
	t.Parallel()
	n := Number{Digits: "447700900123", Region: "GB"}
	names := func(ls []Limit) string {
		var out []string
		for _, l := range ls {
			out = append(out, l.Name)
		}
		return strings.Join(out, " ")
	}
	a := &Account{ID: 7}
	if got := names(SendLimits(a, n, "")); got != "number numberDaily prefix country failures" {
		t.Fatalf("default limits: %s", got)
	}
	a.Settings.Watch = WatchOn
	ls := SendLimits(a, n, "")
	if got := names(ls); got != "number numberDaily prefix country failures watchPrefix watchCountry" {
		t.Fatalf("limits with the watch on: %s", got)
	}
	for _, l := range ls[len(ls)-3:] {
		if l.Kind == LimitRate || l.Property != "to" {
			t.Errorf("%s: kind %v, property %q", l.Name, l.Kind, l.Property)
		}
	}
	if ls[5].Key != "7:watch.prefix:44770090" || ls[6].Key != "7:watch.country:GB" || ls[4].Key != "7:failures:447700900123" {
		t.Fatalf("keys %q %q %q", ls[4].Key, ls[5].Key, ls[6].Key)
	}
	a.Settings.LimitsOff = true
	if got := SendLimits(a, n, ""); got != nil {
		t.Fatalf("limits=off: %s", names(got))
	}
}

func TestThrottledNamesTheRule(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		l    Limit
		want string
	}{
		{Limit{Name: LimitNameFailures, Kind: LimitFailures, Rate: Rate{100, 24 * time.Hour}, Property: "to"},
			"Too many wrong codes were entered for this number (the failures limit is 100 in a row); retry after 61 seconds."},
		{Limit{Name: LimitNameWatchPrefix, Kind: LimitBlocked, Property: "to"},
			"Codes to this number range are paused because too few of those sent were verified (the conversion watch); retry after 61 seconds."},
		{Limit{Name: LimitNameWatchCountry, Kind: LimitBlocked, Property: "to"},
			"Codes to this country are paused because too few of those sent were verified (the conversion watch); retry after 61 seconds."},
	} {
		e := c.l.Throttled(time.Minute + 300*time.Millisecond)
		if e.RetryAfter != 61*time.Second || e.Limit != c.l.Name || e.Failures[0].Code != FailThrottled ||
			e.Failures[0].Property != "to" || e.Failures[0].Details != c.want {
			t.Errorf("%s: %+v", c.l.Name, e)
		}
	}
}
