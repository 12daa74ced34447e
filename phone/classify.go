package phone

import (
	"regexp"
	"slices"
	"strconv"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// classify returns the region and the line type of a parsed number, as
// libphonenumber's GetRegionCodeForNumber and GetNumberType would, in one
// pass over the region's patterns. Those two each work out the region again
// (for a calling code shared by several regions, +1 or +44, by trying each
// region's patterns in turn), and test every pattern twice, each time
// building its text and looking it up in a lock-guarded cache: together
// they were two thirds of the time Parse took. Here each region's patterns
// are compiled once, on the region's first number. classify_test.go holds
// the answers to libphonenumber's.
func classify(p *phonenumbers.PhoneNumber) (region string, t phonenumbers.PhoneNumberType) {
	cc := int(p.GetCountryCode())
	regions := phonenumbers.GetRegionCodesForCountryCode(cc)
	if len(regions) == 0 {
		return "", phonenumbers.UNKNOWN
	}
	if len(regions) == 1 && regions[0] == nonGeographic {
		// +800, +882, ...: kept per calling code, and refused by the caller
		// anyway.
		return nonGeographic, phonenumbers.GetNumberType(p)
	}
	nsn := phonenumbers.GetNationalSignificantNumber(p)
	if len(regions) == 1 {
		return regions[0], patternsOf(regions[0]).numberType(nsn)
	}
	for _, r := range regions {
		rp := patternsOf(r)
		if rp.leading != nil {
			if rp.leading.MatchString(nsn) {
				return r, rp.numberType(nsn)
			}
		} else if t := rp.numberType(nsn); t != phonenumbers.UNKNOWN {
			return r, t
		}
	}
	return "", phonenumbers.UNKNOWN
}

// nonGeographic is libphonenumber's region for calling codes of no country.
const nonGeographic = "001"

// parseInternational is libphonenumber's Parse("+"+digits, "") for the
// plain case, and ok=false for every other, which the caller leaves to
// Parse. Parse spends most of its time on what digits alone never hold (an
// extension, punctuation, letters); what is left for an international
// number is the calling code, which is prefix-free, and the national
// prefix: the plain case is a national number that does not start with
// its region's national prefix (nor with a 0, libphonenumber's "Italian
// leading zero"), of a length Parse takes, under a country's calling code.
// classify_test.go holds the answers to Parse's.
func parseInternational(digits string) (p *phonenumbers.PhoneNumber, ok bool) {
	if digits == "" || digits[0] == '0' {
		return nil, false // no calling code starts with 0
	}
	for l := 1; l <= 3 && l < len(digits); l++ {
		cc, err := strconv.Atoi(digits[:l])
		if err != nil {
			return nil, false
		}
		regions := phonenumbers.GetRegionCodesForCountryCode(cc)
		if len(regions) == 0 {
			continue
		}
		nsn := digits[l:]
		rp := patternsOf(regions[0]) // the calling code's main region
		if rp == nil || len(nsn) < 2 || len(nsn) > 17 || nsn[0] == '0' ||
			rp.nationalPrefix != nil && rp.nationalPrefix.MatchString(nsn) {
			return nil, false
		}
		n, err := strconv.ParseUint(nsn, 10, 64)
		if err != nil {
			return nil, false
		}
		c := int32(cc)
		return &phonenumbers.PhoneNumber{CountryCode: &c, NationalNumber: &n}, true
	}
	return nil, false
}

// regionPatterns are a region's number patterns, compiled.
type regionPatterns struct {
	leading        *regexp.Regexp // nil when the region has no leading digits
	nationalPrefix *regexp.Regexp // what Parse takes for a national prefix; nil: none

	general, premium, tollFree, sharedCost, voip, personal, pager, uan, voicemail, fixed, mobile desc
	sameMobileAndFixed                                                                           bool
}

// desc is one kind of number of a region: its possible national lengths
// (none listed: any) and its pattern, anchored at both ends.
type desc struct {
	lengths []int32
	pattern *regexp.Regexp
}

func (d desc) matches(nsn string) bool {
	if len(d.lengths) > 0 && !slices.Contains(d.lengths, int32(len(nsn))) {
		return false
	}
	return d.pattern.MatchString(nsn)
}

// numberType is libphonenumber's getNumberTypeHelper: the kinds tested in
// its order, fixed line and mobile last.
func (rp *regionPatterns) numberType(nsn string) phonenumbers.PhoneNumberType {
	if rp == nil || !rp.general.matches(nsn) {
		return phonenumbers.UNKNOWN
	}
	for _, k := range []struct {
		d desc
		t phonenumbers.PhoneNumberType
	}{
		{rp.premium, phonenumbers.PREMIUM_RATE}, {rp.tollFree, phonenumbers.TOLL_FREE},
		{rp.sharedCost, phonenumbers.SHARED_COST}, {rp.voip, phonenumbers.VOIP},
		{rp.personal, phonenumbers.PERSONAL_NUMBER}, {rp.pager, phonenumbers.PAGER},
		{rp.uan, phonenumbers.UAN}, {rp.voicemail, phonenumbers.VOICEMAIL},
	} {
		if k.d.matches(nsn) {
			return k.t
		}
	}
	if rp.fixed.matches(nsn) {
		if rp.sameMobileAndFixed || rp.mobile.matches(nsn) {
			return phonenumbers.FIXED_LINE_OR_MOBILE
		}
		return phonenumbers.FIXED_LINE
	}
	if !rp.sameMobileAndFixed && rp.mobile.matches(nsn) {
		return phonenumbers.MOBILE
	}
	return phonenumbers.UNKNOWN
}

var (
	metadataOnce sync.Once
	metadata     map[string]*phonenumbers.PhoneMetadata // by region, geographic ones only
	compiled     sync.Map                               // region -> *regionPatterns
)

// patternsOf returns region's compiled patterns; nil for a region without
// metadata, whose numbers are of no type.
func patternsOf(region string) *regionPatterns {
	if rp, ok := compiled.Load(region); ok {
		return rp.(*regionPatterns)
	}
	metadataOnce.Do(func() {
		metadata = map[string]*phonenumbers.PhoneMetadata{}
		// The library's own metadata, parsed once at its start.
		coll, err := phonenumbers.MetadataCollection()
		if err != nil {
			return
		}
		for _, md := range coll.GetMetadata() {
			if md.GetId() != nonGeographic {
				metadata[md.GetId()] = md
			}
		}
	})
	md, ok := metadata[region]
	if !ok {
		return nil
	}
	rp := &regionPatterns{
		general: compile(md.GetGeneralDesc()), premium: compile(md.GetPremiumRate()),
		tollFree: compile(md.GetTollFree()), sharedCost: compile(md.GetSharedCost()),
		voip: compile(md.GetVoip()), personal: compile(md.GetPersonalNumber()), pager: compile(md.GetPager()),
		uan: compile(md.GetUan()), voicemail: compile(md.GetVoicemail()),
		fixed: compile(md.GetFixedLine()), mobile: compile(md.GetMobile()),
		sameMobileAndFixed: md.GetSameMobileAndFixedLinePattern(),
	}
	if ld := md.GetLeadingDigits(); ld != "" {
		rp.leading = regexp.MustCompile("^(?:" + ld + ")")
	}
	if np := md.GetNationalPrefixForParsing(); np != "" {
		rp.nationalPrefix = regexp.MustCompile("^(?:" + np + ")")
	}
	got, _ := compiled.LoadOrStore(region, rp)
	return got.(*regionPatterns)
}

// compile anchors a kind's pattern the way libphonenumber matches it: the
// whole national number.
func compile(d *phonenumbers.PhoneNumberDesc) desc {
	return desc{lengths: d.GetPossibleLength(), pattern: regexp.MustCompile("^(?:" + d.GetNationalNumberPattern() + ")$")}
}
