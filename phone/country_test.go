package phone

import (
	"testing"

	"github.com/nyaruka/phonenumbers"
)

func TestAlpha3(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"GBR", "GB", true},
		{"gbr", "GB", true},
		{"Usa", "US", true},
		{"DEU", "DE", true},
		{"FRA", "FR", true},
		{"IND", "IN", true},
		{"ALA", "AX", true},
		{"XKX", "XK", true},
		{"GB", "", false},
		{"UK", "", false},
		{"XXX", "", false},
		{"GBRR", "", false},
		{"", "", false},
		{"G\u0130R", "", false},
	}
	for _, tt := range tests {
		got, ok := Alpha3(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Alpha3(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestAlpha2(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"GBR", "GB", true},
		{"GB", "GB", true},
		{"gb", "GB", true},
		{"usa", "US", true},
		{"XK", "XK", true},
		{"AC", "AC", true},
		{"TA", "TA", true},
		{"UK", "UK", false},
		{"ZZ", "ZZ", false},
		{"001", "", false},
		{"G", "", false},
		{"", "", false},
		{"GBRR", "", false},
	}
	for _, tt := range tests {
		got, ok := Alpha2(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("Alpha2(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCountryTableIsISO3166(t *testing.T) {
	t.Parallel()
	// 249 officially assigned codes plus the user-assigned XKX.
	if len(alpha3To2) != 250 {
		t.Fatalf("alpha3To2 has %d entries, want 250", len(alpha3To2))
	}
	seen := map[string]string{}
	for a3, a2 := range alpha3To2 {
		if prev, dup := seen[a2]; dup {
			t.Errorf("%s is the alpha-2 of both %s and %s", a2, prev, a3)
		}
		seen[a2] = a3
		if !alpha2[a2] {
			t.Errorf("Alpha2 refuses %s, the alpha-2 of %s", a2, a3)
		}
	}
	for a2 := range alpha2 {
		if _, ok := seen[a2]; !ok && a2 != "AC" && a2 != "TA" {
			t.Errorf("alpha-2 %s has no alpha-3 code", a2)
		}
	}
}

// Every region libphonenumber can put a number in must be one Alpha2 knows,
// or Parse would refuse that country's numbers.
func TestEveryPhoneRegionIsKnown(t *testing.T) {
	t.Parallel()
	for r := range phonenumbers.GetSupportedRegions() {
		if got, ok := Alpha2(r); !ok || got != r {
			t.Errorf("Alpha2(%q) = %q, %v", r, got, ok)
		}
	}
}
