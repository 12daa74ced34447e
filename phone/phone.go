// Package phone parses, validates and normalises phone numbers with
// libphonenumber (github.com/nyaruka/phonenumbers), and masks them for logs.
//
// Every number the product keeps goes through Parse, so the rest of the
// product can rely on one form: E.164 digits without the '+'.
package phone

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"

	"verifyd"
)

// ErrInvalid is the error every rejected number wraps; the caller reports it
// as ToInvalid. The wrapped text says why, never which number.
var ErrInvalid = errors.New("phone: not a valid phone number")

// maxInput bounds the raw text Parse looks at. A real number with all its
// punctuation is well under it; anything longer is refused before any
// allocation proportional to it.
const maxInput = 64

// maxDigits is the most digits a number may have after stripping: E.164
// allows 15, plus room for a "00" prefix or a national trunk prefix.
const maxDigits = 18

func invalid(reason string) error { return fmt.Errorf("%w: %s", ErrInvalid, reason) }

// Parse turns raw, as a client typed it, into a valid number. Spaces, '-',
// '.', '(' and ')' are ignored; a leading '+' or "00" marks international
// form. Without countryIsoCode the number must be international, though the
// '+' may be left out (Comapi clients send "447123123456"). With an ISO
// 3166-1 alpha-3 countryIsoCode the national form of that country is tried
// first ("07123123456" with "GBR"), then the international form.
//
// Every failure wraps ErrInvalid, including an unknown countryIsoCode; the
// caller judges the code with Alpha3 first to report it separately.
func Parse(raw, countryIsoCode string) (verifyd.Number, error) {
	if len(raw) > maxInput {
		return verifyd.Number{}, invalid("too long")
	}
	digits, international, ok := strip(raw)
	if !ok {
		return verifyd.Number{}, invalid("only digits, spaces, '+', '-', '.', '(' and ')' are allowed")
	}
	if digits == "" {
		return verifyd.Number{}, invalid("no digits")
	}
	if len(digits) > maxDigits {
		return verifyd.Number{}, invalid("too many digits")
	}
	region := ""
	if countryIsoCode != "" {
		if region, ok = Alpha3(countryIsoCode); !ok {
			return verifyd.Number{}, invalid("unknown country code")
		}
	}
	if region != "" && !international {
		if n, err := parseIn(digits, region); err == nil {
			return n, nil
		}
	}
	// International form: the digits start with the calling code. The '+'
	// and an empty region make libphonenumber read them so.
	if p, ok := parseInternational(digits); ok {
		return judge(p)
	}
	return parseIn("+"+digits, "")
}

// parseIn parses s with libphonenumber, region being the alpha-2 region a
// national number belongs to ("" for a '+' number), and keeps it only if it
// is valid and belongs to a country.
func parseIn(s, region string) (verifyd.Number, error) {
	p, err := phonenumbers.Parse(s, region)
	if err != nil {
		return verifyd.Number{}, invalid("not a phone number")
	}
	return judge(p)
}

// judge keeps a parsed number only if it is valid and belongs to a
// country.
func judge(p *phonenumbers.PhoneNumber) (verifyd.Number, error) {
	// libphonenumber's IsValidNumber is "the number matches a type of its
	// region": the type gives both answers.
	r, t := classify(p)
	if t == phonenumbers.UNKNOWN {
		return verifyd.Number{}, invalid("not a valid number for its country")
	}
	if _, ok := Alpha2(r); !ok {
		// Non-geographic numbers (+800 freephone, +882 networks, ...) have
		// region "001": the product keeps a country per number, for its
		// limits and allow-lists, so it cannot take them.
		return verifyd.Number{}, invalid("not a number of a country")
	}
	return verifyd.Number{
		Digits:   strings.TrimPrefix(phonenumbers.Format(p, phonenumbers.E164), "+"),
		Region:   r,
		LineType: lineType(t),
	}, nil
}

// strip removes the punctuation people put in numbers and the international
// prefix. It reports the digits left, whether the number was marked
// international ('+' or "00"), and false if anything but digits remained.
func strip(raw string) (digits string, international, ok bool) {
	var b strings.Builder
	b.Grow(len(raw))
	for _, r := range raw {
		switch {
		case r >= '0' && r <= '9':
			b.WriteByte(byte(r))
		case r == '-' || r == '.' || r == '(' || r == ')' || unicode.IsSpace(r):
		case r == '+' && b.Len() == 0 && !international:
			// Only one '+', and only before the first digit.
			international = true
		default:
			return "", false, false
		}
	}
	digits = b.String()
	if !international {
		if rest, cut := strings.CutPrefix(digits, "00"); cut {
			digits, international = rest, true
		}
	}
	return digits, international, true
}

// lineType maps libphonenumber's number type to the domain's.
func lineType(t phonenumbers.PhoneNumberType) verifyd.LineType {
	switch t {
	case phonenumbers.MOBILE:
		return verifyd.LineMobile
	case phonenumbers.FIXED_LINE_OR_MOBILE:
		return verifyd.LineFixedOrMobile
	case phonenumbers.FIXED_LINE:
		return verifyd.LineFixed
	case phonenumbers.VOIP:
		return verifyd.LineVoIP
	case phonenumbers.TOLL_FREE:
		return verifyd.LineTollFree
	case phonenumbers.PREMIUM_RATE:
		return verifyd.LinePremiumRate
	case phonenumbers.SHARED_COST:
		return verifyd.LineSharedCost
	case phonenumbers.PERSONAL_NUMBER:
		return verifyd.LinePersonal
	case phonenumbers.PAGER:
		return verifyd.LinePager
	case phonenumbers.UAN:
		return verifyd.LineUAN
	case phonenumbers.VOICEMAIL:
		return verifyd.LineVoicemail
	}
	return verifyd.LineUnknown
}

// Normalize turns the inbox's ?to= query into the form numbers are stored
// in. A query that Parse takes as an international number gives the digits
// Parse stores, so "+44 (0)7123 123456" finds what was sent to that `to`
// (447123123456, the national '0' dropped as Parse drops it). Any other
// query gives its digits with the punctuation Parse ignores removed, and a
// leading '+' or "00" dropped. It returns "" when anything but digits is
// left.
func Normalize(query string) string {
	if len(query) > maxInput {
		return ""
	}
	digits, _, ok := strip(query)
	if !ok {
		return ""
	}
	if n, err := Parse(query, ""); err == nil {
		return n.Digits
	}
	return digits
}

// Mask hides a number for logs: its country calling code and last three
// digits stay, every other digit becomes '*' ("447123123456" becomes
// "44*******456"). When fewer than four digits would be hidden, or the input
// is not all digits, everything is masked.
func Mask(digits string) string {
	n := len(digits)
	for i := 0; i < n; i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return strings.Repeat("*", len([]rune(digits)))
		}
	}
	cc := callingCodeLen(digits)
	if cc == 0 || n-cc-3 < 4 {
		return strings.Repeat("*", n)
	}
	return digits[:cc] + strings.Repeat("*", n-cc-3) + digits[n-3:]
}

// callingCodeLen returns the length of the country calling code digits
// starts with, or 0 if none. Calling codes are prefix-free (ITU-T E.164), so
// the first match is the only one.
func callingCodeLen(digits string) int {
	codes := phonenumbers.GetSupportedCallingCodes()
	for l := 1; l <= 3 && l <= len(digits); l++ {
		if c, err := strconv.Atoi(digits[:l]); err == nil && codes[c] {
			return l
		}
	}
	return 0
}
