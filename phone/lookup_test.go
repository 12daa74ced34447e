package phone

import (
	"context"
	"testing"

	"verifyd"
)

func TestLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw string
		want      verifyd.NumberStatus
	}{
		{"UKMobileOn", "+447123123456", verifyd.NumberOn},
		{"USFixedOrMobileOn", "+12015550123", verifyd.NumberOn},
		{"USTollFreeNotProvisioned", "+18002345678", verifyd.NumberNotProvisioned},
		{"UKLandlineNotProvisioned", "+441212345678", verifyd.NumberNotProvisioned},
		{"UKVoIPNotProvisioned", "+445612345678", verifyd.NumberNotProvisioned},
		{"UKPremiumRateNotProvisioned", "+449012345678", verifyd.NumberNotProvisioned},
		{"FranceMobileOn", "+33612345678", verifyd.NumberOn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n, err := Parse(tt.raw, "")
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.raw, err)
			}
			got, err := Lookup{}.LookupNumber(context.Background(), n)
			if err != nil || got != tt.want {
				t.Fatalf("LookupNumber(%s) = %q, %v; want %q", n.LineType, got, err, tt.want)
			}
		})
	}
}

func TestLookupByLineType(t *testing.T) {
	t.Parallel()
	on := map[verifyd.LineType]bool{verifyd.LineMobile: true, verifyd.LineFixedOrMobile: true, verifyd.LineUnknown: true}
	for _, lt := range []verifyd.LineType{
		verifyd.LineMobile, verifyd.LineFixedOrMobile, verifyd.LineFixed, verifyd.LineVoIP, verifyd.LineTollFree,
		verifyd.LinePremiumRate, verifyd.LineSharedCost, verifyd.LinePersonal, verifyd.LinePager, verifyd.LineUAN,
		verifyd.LineVoicemail, verifyd.LineUnknown,
	} {
		got, err := Lookup{}.LookupNumber(context.Background(), verifyd.Number{Digits: "447123123456", LineType: lt})
		want := verifyd.NumberNotProvisioned
		if on[lt] {
			want = verifyd.NumberOn
		}
		if err != nil || got != want {
			t.Errorf("line type %s: got %q, %v; want %q", lt, got, err, want)
		}
	}
}

func TestLookupWithoutLineTypeClassifiesDigits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		digits string
		want   verifyd.NumberStatus
	}{
		{"441212345678", verifyd.NumberNotProvisioned},
		{"447123123456", verifyd.NumberOn},
		{"not a number", verifyd.NumberOn},
	}
	for _, tt := range tests {
		got, err := Lookup{}.LookupNumber(context.Background(), verifyd.Number{Digits: tt.digits})
		if err != nil || got != tt.want {
			t.Errorf("LookupNumber(%q) = %q, %v; want %q", tt.digits, got, err, tt.want)
		}
	}
}
