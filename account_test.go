package verifyd

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSetTestNumbers(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, value string
		want        map[string]TestNumber
		err         string // part of the error, "" for none
	}{
		{"OK", "447700900001:code=123456:status=Off:delivery=Undeliverable, +12015550123:code=000000",
			map[string]TestNumber{
				"447700900001": {Code: "123456", Status: NumberOff, Delivery: DeliveryUndeliverable},
				"12015550123":  {Code: "000000", Status: NumberOn, Delivery: DeliveryDelivered},
			}, ""},
		{"NamesIgnoreCase", "447700900002:CODE=111111:status=notprovisioned:delivery=failed",
			map[string]TestNumber{"447700900002": {Code: "111111", Status: NumberNotProvisioned, Delivery: DeliveryFailed}}, ""},
		{"DeadNeedsNoCode", "447700900003:status=Dead",
			map[string]TestNumber{"447700900003": {Status: NumberDead, Delivery: DeliveryDelivered}}, ""},
		{"EmptyClears", "", nil, ""},
		{"ErrNoCode", "447700900001", nil, "needs code=DIGITS"},
		{"ErrCodeLength", "447700900001:code=12345", nil, "must be 6 digits"},
		{"ErrCodeNotDigits", "447700900001:code=12345a", nil, "must be 6 digits"},
		{"ErrNotANumber", "44770090000x:code=123456", nil, "not a number in international form"},
		{"ErrTooShort", "4477:code=123456", nil, "not a number in international form"},
		{"ErrStatus", "447700900001:code=123456:status=Busy", nil, "status of 447700900001 must be"},
		{"ErrDelivery", "447700900001:code=123456:delivery=Queued", nil, "delivery of 447700900001 must be"},
		{"ErrUnknownKey", "447700900001:code=123456:colour=red", nil, `unknown key "colour"`},
		{"ErrNotKeyValue", "447700900001:123456", nil, "is not key=value"},
		{"ErrTwice", "447700900001:code=123456,447700900001:code=654321", nil, "listed twice"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := Settings{TestNumbers: map[string]TestNumber{"1": {}}}
			err := s.Set("testNumbers", c.value)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one saying %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.TestNumbers, c.want) {
				t.Fatalf("test numbers %+v, want %+v", s.TestNumbers, c.want)
			}
		})
	}
}

func TestTestNumberCodeFollowsCodeLength(t *testing.T) {
	t.Parallel()
	var s Settings
	if err := s.Set("codeLength", "8"); err != nil {
		t.Fatal(err)
	}
	if err := s.Set("testNumbers", "447700900001:code=12345678"); err != nil {
		t.Fatalf("an 8-digit code on an 8-digit account: %v", err)
	}
	if err := s.Set("codeLength", "6"); err == nil || s.CodeLength != 8 ||
		!strings.Contains(err.Error(), "set codeLength and testNumbers (with codes of 6 digits) in one accounts set") {
		t.Fatalf("codeLength=6 under an 8-digit test code: err %v, length %d; want refused and unchanged", err, s.CodeLength)
	}
	if tn, ok := s.TestNumber("447700900001"); !ok || tn.Code != "12345678" {
		t.Fatalf("TestNumber = %+v, %v", tn, ok)
	}
	if _, ok := s.TestNumber("447700900002"); ok {
		t.Fatal("an unlisted number is a test number")
	}
	found := false
	for _, k := range SettingKeys() {
		found = found || k == "testNumbers"
	}
	if !found {
		t.Fatal("SettingKeys does not list testNumbers")
	}
}

func TestSetDefaultFromFollowsSenderRules(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"Shop", "My Shop", "a.b-c_d", "447700900001", "12", "ABCDEFGHIJK", ""} {
		s := Settings{DefaultFrom: "Before"}
		if err := s.Set("defaultFrom", ok); err != nil || s.DefaultFrom != ok {
			t.Errorf("defaultFrom=%q: err %v, stored %q", ok, err, s.DefaultFrom)
		}
	}
	for _, c := range []struct{ value, err string }{
		{"ABCDEFGHIJKL", "2 to 11 characters"},
		{"1234567890123456", "2 to 15 digits"},
		{"A", "2 to 11"},
		{"7", "2 to 15"},
		{"Shop!", "A-Z, a-z, 0-9"},
		{"Café", "A-Z, a-z, 0-9"},
	} {
		s := Settings{DefaultFrom: "Before"}
		err := s.Set("defaultFrom", c.value)
		if err == nil || !strings.Contains(err.Error(), c.err) || s.DefaultFrom != "Before" {
			t.Errorf("defaultFrom=%q: err %v, stored %q; want refused saying %q, unchanged", c.value, err, s.DefaultFrom, c.err)
		}
	}
}

func TestSetRefusesPeriodsThatOverflow(t *testing.T) {
	t.Parallel()
	// 106752 days is the last whole day a time.Duration holds; more wrapped
	// round to a negative period (a limit silently off) or a tiny one.
	for _, kv := range [][2]string{
		{"limit.number", "5/200000d"},
		{"limit.account", "5/213504d"},
		{"failures.cooldown", "200000d"},
		{"watch.cooldown", "213504d"},
	} {
		var s Settings
		if err := s.Set(kv[0], kv[1]); err == nil {
			t.Errorf("%s=%s accepted: %+v (rate %v)", kv[0], kv[1], s, s.Rate("number"))
		} else if !strings.Contains(err.Error(), "at most") {
			t.Errorf("%s=%s: %v, want the error to say the largest period", kv[0], kv[1], err)
		}
	}
	var s Settings
	if err := s.Set("limit.number", "5/3650d"); err != nil || s.Rate("number").Per != 3650*24*time.Hour {
		t.Fatalf("5/3650d: %v, rate %v", err, s.Rate("number"))
	}
}

func TestSetRefusedLeavesSettingsAlone(t *testing.T) {
	t.Parallel()
	base := func() Settings {
		var s Settings
		for _, kv := range [][2]string{{"defaultFrom", "Shop"}, {"codeLength", "8"}, {"validMinutes", "15"},
			{"maxAttempts", "3"}, {"maxSegments", "2"}, {"retentionDays", "7"}, {"blockLandlines", "true"},
			{"failures", "50"}, {"failures.cooldown", "2d"}, {"watch", "on"}, {"watch.minSends", "10"},
			{"watch.minRate", "30%"}, {"watch.cooldown", "3h"}, {"limit.number", "3/1h"}, {"countries", "GBR"}} {
			if err := s.Set(kv[0], kv[1]); err != nil {
				t.Fatal(kv, err)
			}
		}
		return s
	}
	for _, kv := range [][2]string{{"defaultFrom", "Shop!"}, {"codeLength", "3"}, {"validMinutes", "31"},
		{"validMinutes", "0"}, {"maxAttempts", "0"}, {"maxSegments", "11"}, {"retentionDays", "-1"},
		{"blockLandlines", "maybe"}, {"failures", "0"}, {"failures.cooldown", "0s"}, {"watch", "loud"},
		{"watch.minSends", "0"}, {"watch.minRate", "0"}, {"watch.cooldown", "-1h"}, {"limit.number", "0/10m"},
		{"limit.number", "5/0s"}, {"limits", "maybe"}, {"testNumbers", "447979081001:code=1"}} {
		s := base()
		if err := s.Set(kv[0], kv[1]); err == nil {
			t.Errorf("%s=%s accepted", kv[0], kv[1])
		}
		if want := base(); !reflect.DeepEqual(s, want) {
			t.Errorf("refused %s=%s changed the settings:\n got %+v\nwant %+v", kv[0], kv[1], s, want)
		}
	}
}

func TestSetOnOffIgnoreCase(t *testing.T) {
	t.Parallel()
	// watch took OFF; limits, failures and limit.* must take it too.
	var s Settings
	for _, kv := range [][2]string{{"limits", "OFF"}, {"failures", "Off"}, {"limit.number", "OFF"}, {"watch", "OFF"}} {
		if err := s.Set(kv[0], kv[1]); err != nil {
			t.Errorf("%s=%s: %v", kv[0], kv[1], err)
		}
	}
	if !s.LimitsOff || !s.FailuresOff || !s.Rate("number").Off() || s.Watch != WatchOff || s.Limits["number"] != "off" {
		t.Fatalf("settings %+v, want everything off", s)
	}
	if err := s.Set("limits", "On"); err != nil || s.LimitsOff {
		t.Fatalf("limits=On: %v, off %v", err, s.LimitsOff)
	}
	if err := s.Set("defaultFrom", "OFF"); err != nil || s.DefaultFrom != "OFF" {
		t.Fatalf("defaultFrom=OFF: %v, stored %q", err, s.DefaultFrom)
	}
}
