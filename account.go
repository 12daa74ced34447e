package verifyd

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Account is an application that uses the API. Its credential is either a
// generated secret (stored as SHA-256) or a chosen password (argon2id).
type Account struct {
	ID           int64
	Name         string
	SecretDigest []byte // SHA-256 of a generated secret, or nil
	PasswordHash string // argon2id PHC string of a chosen password, or ""
	Disabled     bool
	Settings     Settings
	Created      time.Time
}

// Settings are an account's tunable policy. Zero values mean "the default";
// the stores keep them as JSON, so adding a setting needs no migration.
type Settings struct {
	DefaultFrom    string            `json:"defaultFrom,omitempty"`
	ReservedFrom   []string          `json:"reservedFrom,omitempty"`
	CodeLength     int               `json:"codeLength,omitempty"`
	ValidMinutes   int               `json:"validMinutes,omitempty"`
	MaxAttempts    int               `json:"maxAttempts,omitempty"`
	MaxSegments    int               `json:"maxSegments,omitempty"`
	RetentionDays  int               `json:"retentionDays,omitempty"`
	LimitsOff      bool              `json:"limitsOff,omitempty"`
	Limits         map[string]string `json:"limits,omitempty"` // overrides of DefaultRates, "off" or "N/period"
	Countries      []string          `json:"countries,omitempty"`
	BlockLandlines bool              `json:"blockLandlines,omitempty"`
	// TestNumbers are keyed by digits, international form.
	TestNumbers map[string]TestNumber `json:"testNumbers,omitempty"`

	// FailuresOff switches off the refusal of sends to a number after a run
	// of wrong codes; MaxFailures (0: DefaultMaxFailures) is that run's
	// length and FailureCooldown (0: DefaultFailureCooldown) how long after
	// its last wrong code the refusal lasts.
	FailuresOff     bool   `json:"failuresOff,omitempty"`
	MaxFailures     int    `json:"maxFailures,omitempty"`
	FailureCooldown Period `json:"failureCooldown,omitempty"`

	// The conversion watch (see WatchPolicy); zero values are the defaults.
	Watch         WatchMode `json:"watch,omitempty"`
	WatchMinSends int       `json:"watchMinSends,omitempty"`
	WatchMinRate  float64   `json:"watchMinRate,omitempty"`
	WatchCooldown Period    `json:"watchCooldown,omitempty"`
}

// Failure-run defaults: NIST SP 800-63B caps consecutive failed attempts
// at 100.
const (
	DefaultMaxFailures     = 100
	DefaultFailureCooldown = 24 * time.Hour
)

// Failures returns how many consecutive wrong codes for one number make
// the account refuse sends to it, for how long after the last, and whether
// that rule is on. limits=off switches it off too.
func (s Settings) Failures() (max int, cooldown time.Duration, on bool) {
	max, cooldown = s.MaxFailures, time.Duration(s.FailureCooldown)
	if max == 0 || max > DefaultMaxFailures {
		// NIST's cap is also the ceiling: a larger run stored before Set
		// refused one is judged at the cap.
		max = DefaultMaxFailures
	}
	if cooldown == 0 {
		cooldown = DefaultFailureCooldown
	}
	return max, cooldown, !s.FailuresOff && !s.LimitsOff
}

// Period is a duration kept in its command-line form ("24h", "7d").
type Period time.Duration

// MarshalText writes the period as ParsePeriod reads it.
func (p Period) MarshalText() ([]byte, error) { return []byte(formatPeriod(time.Duration(p))), nil }

// UnmarshalText reads what MarshalText wrote.
func (p *Period) UnmarshalText(b []byte) error {
	d, err := ParsePeriod(string(b))
	if err != nil {
		return err
	}
	*p = Period(d)
	return nil
}

// TestNumber is how one of the account's test numbers behaves. A test
// number never reaches a carrier and counts toward no send limit, so an
// application can run end-to-end checks against a production account, the
// way carriers' "magic numbers" allow.
type TestNumber struct {
	// Code is the code every request to the number gets, so a check can
	// validate it without reading a phone. Empty only when Status is Dead,
	// where nothing is sent.
	Code string `json:"code,omitempty"`
	// Status is the numberStatus answered instead of a lookup's.
	Status NumberStatus `json:"status"`
	// Delivery is the state the message ends in, as a carrier's receipt
	// would set it.
	Delivery DeliveryState `json:"delivery"`
}

// TestNumber returns the test number with these digits, if the account has
// one.
func (s Settings) TestNumber(digits string) (TestNumber, bool) {
	tn, ok := s.TestNumbers[digits]
	return tn, ok
}

// CodeLen is the number of digits in the account's codes.
func (s Settings) CodeLen() int {
	if s.CodeLength == 0 {
		return DefaultCodeLength
	}
	return s.CodeLength
}

// Validity is how long the account's codes live by default.
func (s Settings) Validity() time.Duration {
	if s.ValidMinutes == 0 {
		return DefaultValidity
	}
	return time.Duration(s.ValidMinutes) * time.Minute
}

// Attempts is how many wrong codes lock a request.
func (s Settings) Attempts() int {
	if s.MaxAttempts == 0 {
		return DefaultMaxAttempts
	}
	return s.MaxAttempts
}

// Segments is the most SMS segments a rendered text may take.
func (s Settings) Segments() int {
	if s.MaxSegments == 0 {
		return 3
	}
	return s.MaxSegments
}

// Retention is how long a verification stays readable after its creation
// (the purge judges rows by when they were created, which the index has).
func (s Settings) Retention() time.Duration {
	if s.RetentionDays == 0 {
		return DefaultRetention
	}
	return time.Duration(s.RetentionDays) * 24 * time.Hour
}

// SettingKeys lists the keys Set accepts, for help texts.
func SettingKeys() []string {
	keys := []string{"defaultFrom", "reservedFrom", "codeLength", "validMinutes", "maxAttempts",
		"maxSegments", "retentionDays", "limits", "countries", "blockLandlines", "testNumbers",
		"failures", "failures.cooldown", "watch", "watch.minSends", "watch.minRate", "watch.cooldown"}
	n := len(keys)
	for name := range DefaultRates {
		keys = append(keys, "limit."+name)
	}
	sort.Strings(keys[n:])
	return keys
}

// Set changes one setting from its command-line form, key=value. A value
// it refuses leaves the settings as they were.
func (s *Settings) Set(key, value string) error {
	intIn := func(lo, hi int) (int, error) {
		n, err := strconv.Atoi(value)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("%s must be a whole number from %d to %d", key, lo, hi)
		}
		return n, nil
	}
	// setInt stores a whole number in range, and leaves *p alone otherwise.
	setInt := func(p *int, lo, hi int) error {
		n, err := intIn(lo, hi)
		if err == nil {
			*p = n
		}
		return err
	}
	list := func() []string {
		var out []string
		for _, f := range strings.Split(value, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
		return out
	}
	// on and off are words, taken in any case as watch's modes are (but a
	// sender id named OFF is kept as written).
	if key == "limits" || key == "failures" || strings.HasPrefix(key, "limit.") {
		if strings.EqualFold(value, "off") || strings.EqualFold(value, "on") {
			value = strings.ToLower(value)
		}
	}
	var err error
	switch key {
	case "defaultFrom":
		// create sends the account's default as it is, unjudged: a sender
		// the API would refuse in a request must not get in this way.
		if value != "" {
			if code, details := JudgeSender(value); code != "" {
				return fmt.Errorf("defaultFrom %q: %s", value, details)
			}
		}
		s.DefaultFrom = value
	case "reservedFrom":
		s.ReservedFrom = list()
	case "codeLength":
		var n int
		if n, err = intIn(MinCodeLength, MaxCodeLength); err == nil {
			// A test number whose code no longer has the right length could
			// never be validated: refuse rather than break it silently.
			for digits, tn := range s.TestNumbers {
				if tn.Code != "" && len(tn.Code) != n {
					return fmt.Errorf("codeLength %d does not fit the %d-digit code of test number %s; set codeLength and testNumbers (with codes of %d digits) in one accounts set", n, len(tn.Code), digits, n)
				}
			}
			s.CodeLength = n
		}
	case "validMinutes":
		err = setInt(&s.ValidMinutes, 1, int(MaxValidity/time.Minute))
	case "maxAttempts":
		err = setInt(&s.MaxAttempts, 1, 100)
	case "maxSegments":
		err = setInt(&s.MaxSegments, 1, 10)
	case "retentionDays":
		err = setInt(&s.RetentionDays, 1, 3650)
	case "limits":
		switch value {
		case "off":
			s.LimitsOff = true
		case "on":
			s.LimitsOff = false
		default:
			return fmt.Errorf("limits must be on or off")
		}
	case "countries":
		s.Countries = nil
		for _, c := range list() {
			s.Countries = append(s.Countries, strings.ToUpper(c))
		}
	case "blockLandlines":
		b, perr := strconv.ParseBool(value)
		if perr != nil {
			return fmt.Errorf("blockLandlines must be true or false")
		}
		s.BlockLandlines = b
	case "testNumbers":
		tns, err := parseTestNumbers(value, s.CodeLen())
		if err != nil {
			return err
		}
		s.TestNumbers = tns
	case "failures":
		if value == "off" {
			s.FailuresOff, s.MaxFailures = true, 0
			break
		}
		var n int
		// At most NIST SP 800-63B's cap of 100 consecutive failures.
		if n, err = intIn(1, DefaultMaxFailures); err != nil {
			return fmt.Errorf("failures must be off or a whole number from 1 to %d", DefaultMaxFailures)
		}
		s.FailuresOff, s.MaxFailures = false, n
	case "failures.cooldown", "watch.cooldown":
		d, perr := ParsePeriod(value)
		if perr != nil {
			return fmt.Errorf("%s: %v", key, perr)
		}
		if key == "watch.cooldown" {
			s.WatchCooldown = Period(d)
		} else {
			s.FailureCooldown = Period(d)
		}
	case "watch":
		mode, ok := oneOf(value, WatchOff, WatchMonitor, WatchOn)
		if !ok {
			return fmt.Errorf("watch must be off, monitor or on")
		}
		s.Watch = mode
	case "watch.minSends":
		err = setInt(&s.WatchMinSends, 1, 1_000_000)
	case "watch.minRate":
		r, ok := parseShare(value)
		if !ok {
			return fmt.Errorf("watch.minRate must be a share above 0 and at most 1, such as 0.2 or 20%%")
		}
		s.WatchMinRate = r
	default:
		name, ok := strings.CutPrefix(key, "limit.")
		if _, known := DefaultRates[name]; !ok || !known {
			return fmt.Errorf("unknown setting %q (known: %s)", key, strings.Join(SettingKeys(), ", "))
		}
		if _, err := ParseRate(value); err != nil {
			return fmt.Errorf("%s: %v", key, err)
		}
		if _, per, _ := strings.Cut(value, "/"); value != "off" {
			if _, err := ParsePeriod(per); err != nil {
				return fmt.Errorf("%s: %v", key, err)
			}
		}
		if s.Limits == nil {
			s.Limits = map[string]string{}
		}
		s.Limits[name] = value
	}
	return err
}

// MaxPeriod is the longest period a limit or a cooldown may have.
const MaxPeriod = 3650 * 24 * time.Hour

// Reserved reports whether from is on the account's reserved list,
// ignoring case and surrounding spaces (a handset shows "BANK" and "bank"
// alike).
func (s Settings) Reserved(from string) bool {
	for _, r := range s.ReservedFrom {
		if strings.EqualFold(strings.TrimSpace(r), strings.TrimSpace(from)) {
			return true
		}
	}
	return false
}

// JudgeSender applies the API's rules for a sender id (a from): numeric
// senders 2 to 15 digits, alphanumeric ones 2 to 11 characters from A-Z
// a-z 0-9 - _ . and space. It returns the first failing rule's failure
// code and a sentence, or "". A request's from, an account's default and
// the server's are all held to it, since each reaches the carrier.
func JudgeSender(from string) (code, details string) {
	n := utf8.RuneCountInString(from)
	if IsDigits(from) {
		switch {
		case n < 2:
			return FailFromUnderMinTextLength, "A numeric from must have 2 to 15 digits."
		case n > 15:
			return FailFromExceedsMaxNumericLen, "A numeric from must have 2 to 15 digits."
		}
		return "", ""
	}
	for _, c := range from {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ' ') {
			return FailFromDisallowedCharacters, "from may only contain A-Z, a-z, 0-9, hyphen, underscore, full stop and space."
		}
	}
	switch {
	case n < 2:
		return FailFromUnderMinTextLength, "An alphanumeric from must have 2 to 11 characters."
	case n > 11:
		return FailFromExceedsMaxTextLength, "An alphanumeric from must have 2 to 11 characters."
	}
	return "", ""
}

// parseShare reads a share above 0 and at most 1, written as a fraction
// (0.2) or a percentage (20%).
func parseShare(v string) (float64, bool) {
	scale := 1.0
	if p, ok := strings.CutSuffix(v, "%"); ok {
		v, scale = p, 100
	}
	r, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, false
	}
	r /= scale
	return r, r > 0 && r <= 1
}

// parseTestNumbers reads the testNumbers setting: a comma-separated list of
// NUMBER:key=value:key=value entries, the keys being code, status (On, Off,
// NotProvisioned, Dead; default On) and delivery (Delivered, Undeliverable,
// Failed, Expired, Submitted; default Delivered). An empty value clears the
// list. Names are matched without regard to case.
func parseTestNumbers(value string, codeLen int) (map[string]TestNumber, error) {
	const syntax = "write testNumbers=NUMBER:code=DIGITS[:status=On|Off|NotProvisioned|Dead][:delivery=Delivered|Undeliverable|Failed|Expired|Submitted],..."
	out := map[string]TestNumber{}
	for _, entry := range strings.Split(value, ",") {
		if entry = strings.TrimSpace(entry); entry == "" {
			continue
		}
		fields := strings.Split(entry, ":")
		number := strings.TrimPrefix(strings.TrimSpace(fields[0]), "+")
		if !IsDigits(number) || len(number) < 8 || len(number) > 15 {
			return nil, fmt.Errorf("testNumbers: %q is not a number in international form (8 to 15 digits); %s", fields[0], syntax)
		}
		if _, dup := out[number]; dup {
			return nil, fmt.Errorf("testNumbers: %s is listed twice", number)
		}
		tn := TestNumber{Status: NumberOn, Delivery: DeliveryDelivered}
		for _, f := range fields[1:] {
			k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
			if !ok {
				return nil, fmt.Errorf("testNumbers: %q is not key=value; %s", f, syntax)
			}
			switch strings.ToLower(k) {
			case "code":
				if !IsDigits(v) || len(v) != codeLen {
					return nil, fmt.Errorf("testNumbers: the code of %s must be %d digits, the account's code length", number, codeLen)
				}
				tn.Code = v
			case "status":
				st, ok := oneOf(v, NumberOn, NumberOff, NumberNotProvisioned, NumberDead)
				if !ok {
					return nil, fmt.Errorf("testNumbers: status of %s must be On, Off, NotProvisioned or Dead", number)
				}
				tn.Status = st
			case "delivery":
				d, ok := oneOf(v, DeliveryDelivered, DeliveryUndeliverable, DeliveryFailed, DeliveryExpired, DeliverySubmitted)
				if !ok {
					return nil, fmt.Errorf("testNumbers: delivery of %s must be Delivered, Undeliverable, Failed, Expired or Submitted", number)
				}
				tn.Delivery = d
			default:
				return nil, fmt.Errorf("testNumbers: unknown key %q; %s", k, syntax)
			}
		}
		if tn.Code == "" && tn.Status != NumberDead {
			// Nothing is sent to a Dead number, so only it may go without.
			return nil, fmt.Errorf("testNumbers: %s needs code=DIGITS; %s", number, syntax)
		}
		out[number] = tn
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// oneOf returns the name among names that v spells, ignoring case.
func oneOf[T ~string](v string, names ...T) (T, bool) {
	for _, n := range names {
		if strings.EqualFold(v, string(n)) {
			return n, true
		}
	}
	return "", false
}

// IsDigits reports whether s is non-empty and only ASCII digits: the form
// of codes, numbers and numeric sender ids.
func IsDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
