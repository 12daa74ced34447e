package http

import (
	"slices"
	"testing"
	"time"

	"verifyd"
	"verifyd/gsm"
)

func TestDropTrailingCommas(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"a":1,}`:                 `{"a":1}`,
		"{\"a\":1 ,\n }":           "{\"a\":1 \n }",
		`[1,2,]`:                   `[1,2]`,
		`{"a":",}"}`:               `{"a":",}"}`,
		`{"a":"\",}",}`:            `{"a":"\",}"}`,
		`{,}`:                      `{,}`,
		`{"a":1,,}`:                `{"a":1,,}`,
		`{"a":[1,],"b":{"c":2,},}`: `{"a":[1],"b":{"c":2}}`,
	} {
		if got := string(dropTrailingCommas([]byte(in))); got != want {
			t.Errorf("dropTrailingCommas(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	want := time.Date(2015, 10, 21, 13, 28, 6, 419_000_000, time.UTC)
	for _, s := range []string{"2015-10-21T13:28:06.419Z", "2015-10-21T15:28:06.419+02:00", "2015-10-21T13:28:06.419", "2015-10-21t13:28:06.419z", " 2015-10-21 13:28:06.419Z "} {
		got, ok := parseTime(s)
		if !ok || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("parseTime(%q) = %v, %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "2015-10-21", "yesterday", "2015-13-01T00:00:00Z"} {
		if _, ok := parseTime(s); ok {
			t.Errorf("parseTime(%q) accepted it", s)
		}
	}
	if got := formatTime(want.In(time.FixedZone("x", 3600))); got != "2015-10-21T13:28:06.419Z" {
		t.Errorf("formatTime = %s", got)
	}
}

// knownFailures are the failure codes a create may answer with.
var knownFailures = []string{
	verifyd.FailInvalidJSON, verifyd.FailToEmpty, verifyd.FailToInvalid, verifyd.FailCountryIsoCodeInvalid,
	verifyd.FailFromEmpty, verifyd.FailFromUnderMinTextLength, verifyd.FailFromExceedsMaxNumericLen,
	verifyd.FailFromDisallowedCharacters, verifyd.FailFromExceedsMaxTextLength, verifyd.FailFromReserved,
	verifyd.FailBodyInvalid, verifyd.FailValidUntilMinExceeded, verifyd.FailValidUntilMaxExceeded,
	verifyd.FailCountryNotAllowed,
}

var knownProperties = []string{"", "to", "countryIsoCode", "from", "body", "validUntil"}

func FuzzDecodeCreate(f *testing.F) {
	for _, s := range []string{
		`{"from":"Test","to":"447979080215"}`,
		`[{"from":"Test","to":"447979080215"}]`,
		"{\n    \"from\": \"Test\",\n    \"to\": \"447979080215\",\n}",
		`{"to":"07123123456","countryIsoCode":"GBR","body":"{{code}} {{validMinutes}}","validUntil":"2025-03-04T10:25:00Z"}`,
		`{"to":null,"from":1,"body":{},"validUntil":[]}`,
		`[]`, `[{},{}]`, `"x"`, ``,
	} {
		f.Add([]byte(s))
	}
	a := &verifyd.Account{ID: 1, Settings: verifyd.Settings{ReservedFrom: []string{"Bank"}, Countries: []string{"GBR", "FR"}}}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := judgeCreate(body, a, "", gsm.CharsetGSM, t0)
		if err == nil {
			if in.number.Digits == "" || in.from == "" || in.template == "" || in.validUntil.Before(t0) || in.validUntil.After(t0.Add(verifyd.MaxValidity)) {
				t.Fatalf("accepted %q as %+v", body, in)
			}
			return
		}
		if err.Code != verifyd.EINVALID || len(err.Failures) == 0 {
			t.Fatalf("%q: error %+v", body, err)
		}
		seen := map[string]bool{}
		for _, f := range err.Failures {
			if !slices.Contains(knownFailures, f.Code) || !slices.Contains(knownProperties, f.Property) || f.Details == "" {
				t.Fatalf("%q: unknown failure %+v", body, f)
			}
			if seen[f.Property] {
				t.Fatalf("%q: property %q reported twice", body, f.Property)
			}
			seen[f.Property] = true
		}
	})
}

// TestParseTimeISO8601Offsets holds incoming timestamps to API.md ("may carry
// any offset") and the seed ("ISO 8601 format"): an offset written without
// its colon (+0200, as PHP's DATE_ISO8601 and Java's SimpleDateFormat write
// it) or as hours alone (+02) is an offset too.
func TestParseTimeISO8601Offsets(t *testing.T) {
	t.Parallel()
	want := time.Date(2015, 10, 21, 13, 28, 6, 419_000_000, time.UTC)
	for _, s := range []string{
		"2015-10-21T15:28:06.419+0200", "2015-10-21T11:28:06.419-0200", "2015-10-21T15:28:06.419+02",
		"2015-10-21 15:28:06.419+0200", "2015-10-21T13:28:06.419+0000",
	} {
		got, ok := parseTime(s)
		if !ok || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("parseTime(%q) = %v, %v", s, got, ok)
		}
	}
	if got, ok := parseTime("2015-10-21T15:28:06+0200"); !ok || !got.Equal(want.Truncate(time.Second)) {
		t.Errorf("parseTime without a fraction = %v, %v", got, ok)
	}
	for _, s := range []string{"2015-10-21T13:28:06.419+2", "2015-10-21T13:28:06.419+020", "2015-10-21T13:28:06.419+02:0"} {
		if _, ok := parseTime(s); ok {
			t.Errorf("parseTime(%q) accepted it", s)
		}
	}
}
