package phone

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// classify and parseInternational must answer exactly what libphonenumber
// answers, for the example numbers of every type of every region, numbers
// near them, and random numbers under every calling code and none (most of
// them invalid, which is as telling).
func TestFastPathsAgreeWithLibphonenumber(t *testing.T) {
	t.Parallel()
	check := func(p *phonenumbers.PhoneNumber) {
		t.Helper()
		wantRegion, wantType := phonenumbers.GetRegionCodeForNumber(p), phonenumbers.GetNumberType(p)
		region, typ := classify(p)
		if typ != wantType || (wantType != phonenumbers.UNKNOWN && region != wantRegion) {
			t.Errorf("+%d %d: classify = %s %v, libphonenumber %s %v", p.GetCountryCode(), p.GetNationalNumber(),
				region, typ, wantRegion, wantType)
		}
	}
	randomDigits := func(rng *rand.Rand, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + rng.IntN(10))
		}
		return string(b)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	examples, valid := 0, 0
	fastAnswers := 0
	try := func(e164 string) {
		p, err := phonenumbers.Parse(e164, "")
		if err == nil {
			if phonenumbers.IsValidNumber(p) {
				valid++
			}
			check(p)
		}
		digits := e164[1:]
		fast, ok := parseInternational(digits)
		if !ok {
			return
		}
		fastAnswers++
		if err != nil {
			t.Errorf("%s: parseInternational = %v, Parse failed: %v", e164, fast, err)
		} else if fast.GetCountryCode() != p.GetCountryCode() || fast.GetNationalNumber() != p.GetNationalNumber() ||
			fast.GetItalianLeadingZero() != p.GetItalianLeadingZero() || fast.GetNumberOfLeadingZeros() != p.GetNumberOfLeadingZeros() {
			t.Errorf("%s: parseInternational = %v, Parse = %v", e164, fast, p)
		}
	}
	for region := range phonenumbers.GetSupportedRegions() {
		for typ := phonenumbers.FIXED_LINE; typ <= phonenumbers.VOICEMAIL; typ++ {
			p := phonenumbers.GetExampleNumberForType(region, typ)
			if p == nil {
				continue
			}
			check(p)
			examples++
			// Its neighbours: the same leading digits, the rest at random,
			// and one digit more or less.
			cc, nsn := strconv.Itoa(int(p.GetCountryCode())), phonenumbers.GetNationalSignificantNumber(p)
			for range 3 {
				keep := rng.IntN(len(nsn) + 1)
				try("+" + cc + nsn[:keep] + randomDigits(rng, len(nsn)-keep))
			}
			try("+" + cc + nsn + randomDigits(rng, 1))
			try("+" + cc + nsn[:len(nsn)-1])
		}
	}
	if examples < 1000 {
		t.Fatalf("only %d example numbers", examples)
	}
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		for range 50 {
			try("+" + strconv.Itoa(cc) + randomDigits(rng, 4+rng.IntN(11)))
		}
	}
	for range 5000 {
		try("+" + randomDigits(rng, 1+rng.IntN(18)))
	}
	if fastAnswers < 5000 {
		t.Fatalf("parseInternational answered only %d times: the test says little about it", fastAnswers)
	}
	if valid < 1000 {
		t.Fatalf("only %d random numbers were valid: the test says little about valid ones", valid)
	}
}
