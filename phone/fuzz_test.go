package phone

import (
	"errors"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// FuzzParse feeds Parse arbitrary text. It must never panic, every refusal
// must be ErrInvalid, and every accepted number must be in its final form:
// parsing "+Digits" with no country gives the same number back, so what the
// store keeps is stable.
func FuzzParse(f *testing.F) {
	f.Add("447123123456", "")
	f.Add("07123123456", "GBR")
	f.Fuzz(func(t *testing.T, raw, country string) {
		n, err := Parse(raw, country)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q, %q): error %v is not ErrInvalid", raw, country, err)
			}
			return
		}
		again, err := Parse("+"+n.Digits, "")
		if err != nil {
			t.Fatalf("Parse(%q, %q) = %+v, but +%s does not re-parse: %v", raw, country, n, n.Digits, err)
		}
		if again != n {
			t.Fatalf("Parse(%q, %q) = %+v, but +%s re-parses as %+v", raw, country, n, n.Digits, again)
		}
		if _, ok := Alpha2(n.Region); !ok {
			t.Fatalf("Parse(%q, %q) = %+v: region is not alpha-2", raw, country, n)
		}
		if Normalize(raw) == "" {
			t.Fatalf("Parse(%q, %q) accepted what Normalize refuses", raw, country)
		}
		// The inbox's ?to= finds what was sent to the same text as `to`.
		if got := Normalize(raw); country == "" && got != n.Digits {
			t.Fatalf("Parse(%q) stores %s, but Normalize gives %s", raw, n.Digits, got)
		}
		// Parse judges validity by the number's type; it must agree with
		// libphonenumber's own IsValidNumber.
		p, err := phonenumbers.Parse("+"+n.Digits, "")
		if err != nil || !phonenumbers.IsValidNumber(p) || phonenumbers.GetRegionCodeForNumber(p) != n.Region {
			t.Fatalf("Parse(%q, %q) = %+v, which libphonenumber does not call valid", raw, country, n)
		}
	})
}

// FuzzParseAgreesWithIsValidNumber checks the other direction on
// international numbers: whatever libphonenumber calls a valid number of a
// country, Parse accepts.
func FuzzParseAgreesWithIsValidNumber(f *testing.F) {
	for _, d := range []string{"447123123456", "4479790802150", "12015550123", "80012345678", "38343201234", "2908999"} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, digits string) {
		if len(digits) > maxDigits || strings.Trim(digits, "0123456789") != "" {
			t.Skip()
		}
		// A leading "00" is the international prefix, to Parse as to a phone.
		p, err := phonenumbers.Parse("+"+strings.TrimPrefix(digits, "00"), "")
		want := err == nil && phonenumbers.IsValidNumber(p) && phonenumbers.GetRegionCodeForNumber(p) != "001"
		_, err = Parse(digits, "")
		if got := err == nil; got != want {
			t.Fatalf("Parse(%q) accepted = %v, libphonenumber says valid = %v", digits, got, want)
		}
	})
}
