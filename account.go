package verifyd

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
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

// Retention is how long finished verifications stay readable.
func (s Settings) Retention() time.Duration {
	if s.RetentionDays == 0 {
		return DefaultRetention
	}
	return time.Duration(s.RetentionDays) * 24 * time.Hour
}

// SettingKeys lists the keys Set accepts, for help texts.
func SettingKeys() []string {
	keys := []string{"defaultFrom", "reservedFrom", "codeLength", "validMinutes", "maxAttempts",
		"maxSegments", "retentionDays", "limits", "countries", "blockLandlines"}
	for name := range DefaultRates {
		keys = append(keys, "limit."+name)
	}
	sort.Strings(keys[10:])
	return keys
}

// Set changes one setting from its command-line form, key=value.
func (s *Settings) Set(key, value string) error {
	intIn := func(lo, hi int) (int, error) {
		n, err := strconv.Atoi(value)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("%s must be a whole number from %d to %d", key, lo, hi)
		}
		return n, nil
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
	var err error
	switch key {
	case "defaultFrom":
		s.DefaultFrom = value
	case "reservedFrom":
		s.ReservedFrom = list()
	case "codeLength":
		s.CodeLength, err = intIn(4, 10)
	case "validMinutes":
		s.ValidMinutes, err = intIn(1, int(MaxValidity/time.Minute))
	case "maxAttempts":
		s.MaxAttempts, err = intIn(1, 100)
	case "maxSegments":
		s.MaxSegments, err = intIn(1, 10)
	case "retentionDays":
		s.RetentionDays, err = intIn(1, 3650)
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
		s.BlockLandlines, err = strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("blockLandlines must be true or false")
		}
	default:
		name, ok := strings.CutPrefix(key, "limit.")
		if _, known := DefaultRates[name]; !ok || !known {
			return fmt.Errorf("unknown setting %q (known: %s)", key, strings.Join(SettingKeys(), ", "))
		}
		if _, err := ParseRate(value); err != nil {
			return fmt.Errorf("%s: %v", key, err)
		}
		if s.Limits == nil {
			s.Limits = map[string]string{}
		}
		s.Limits[name] = value
	}
	return err
}
