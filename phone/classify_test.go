package phone

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// classify must answer exactly what libphonenumber answers, for the example
// numbers of every type of every region and for random numbers under every
// calling code (most of them invalid, which is as telling).
func TestClassifyAgreesWithLibphonenumber(t *testing.T) {
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
	try := func(e164 string) {
		p, err := phonenumbers.Parse(e164, "")
		if err != nil {
			return
		}
		if phonenumbers.IsValidNumber(p) {
			valid++
		}
		check(p)
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
	if valid < 1000 {
		t.Fatalf("only %d random numbers were valid: the test says little about valid ones", valid)
	}
}
