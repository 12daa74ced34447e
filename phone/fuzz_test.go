package phone

import (
	"errors"
	"testing"
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
	})
}
