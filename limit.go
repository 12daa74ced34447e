package verifyd

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Rate is "Count sends per Per". The zero Rate is off.
type Rate struct {
	Count int
	Per   time.Duration
}

// Off reports whether the rate limits nothing.
func (r Rate) Off() bool { return r.Count <= 0 || r.Per <= 0 }

func (r Rate) String() string {
	if r.Off() {
		return "off"
	}
	return fmt.Sprintf("%d/%s", r.Count, formatPeriod(r.Per))
}

// ParseRate reads "off" or "N/PERIOD", PERIOD being a Go duration or a
// number of days such as "1d".
func ParseRate(s string) (Rate, error) {
	if s == "off" {
		return Rate{}, nil
	}
	count, per, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(count)
	if !ok || err != nil || n < 1 {
		return Rate{}, fmt.Errorf("%q is not a rate: write off or N/PERIOD, e.g. 5/10m or 10/1d", s)
	}
	d, err := ParsePeriod(per)
	if err != nil {
		return Rate{}, err
	}
	return Rate{Count: n, Per: d}, nil
}

// ParsePeriod reads a period of a second or more: a Go duration ("10m",
// "90s") or a whole number of days ("1d").
func ParsePeriod(s string) (time.Duration, error) {
	if days, isDays := strings.CutSuffix(s, "d"); isDays {
		nd, err := strconv.Atoi(days)
		if err != nil || nd < 1 {
			return 0, fmt.Errorf("%q is not a period", s)
		}
		return time.Duration(nd) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second {
		return 0, fmt.Errorf("%q is not a period of a second or more", s)
	}
	return d, nil
}

func formatPeriod(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// DefaultRates are the send limits of an account that overrides none. Off
// ones are off until the operator sets them.
var DefaultRates = map[string]Rate{
	"number":       {5, 10 * time.Minute},
	"numberDaily":  {10, 24 * time.Hour},
	"prefix":       {100, time.Hour},
	"country":      {50000, 24 * time.Hour},
	"ip":           {60, time.Minute},
	"account":      {},
	"accountDaily": {},
}

// Rate returns the account's rate for the named limit.
func (s Settings) Rate(name string) Rate {
	if v, ok := s.Limits[name]; ok {
		if r, err := ParseRate(v); err == nil {
			return r
		}
	}
	return DefaultRates[name]
}

// LimitKind is how a store judges a Limit.
type LimitKind int

// The kinds of limit. Only a LimitRate is charged by a send; the others
// refuse while something the store keeps says so, and charge nothing.
const (
	// LimitRate is a GCRA bucket of Rate, charged once per send.
	LimitRate LimitKind = iota
	// LimitFailures refuses sends to the verification's own number while
	// the number's run of consecutive wrong codes (kept by
	// UpdateVerification) is Rate.Count long or longer, until Rate.Per
	// after the last of them. A run is over with a right code, or once
	// Rate.Per has passed since its last wrong code: the count then starts
	// again.
	LimitFailures
	// LimitBlocked refuses sends while the conversion watch's Block with
	// this Key lasts.
	LimitBlocked
)

// Limit is one rule a send is judged by: a bucket it is charged to, or a
// block it must not be under.
type Limit struct {
	Name     string // which setting, e.g. "number"
	Key      string // the bucket or block, unique across accounts
	Rate     Rate
	Property string // "to" for per-number limits, "" for account-wide ones
	Kind     LimitKind
}

// The names of the limits that are not send rates.
const (
	LimitNameFailures     = "failures"
	LimitNameWatchPrefix  = "watchPrefix"
	LimitNameWatchCountry = "watchCountry"
)

// LimitNames lists the name of every limit that can refuse a send, for
// metrics that start every series at zero.
func LimitNames() []string {
	names := make([]string, 0, len(DefaultRates)+3)
	for name := range DefaultRates {
		names = append(names, name)
	}
	sort.Strings(names)
	return append(names, LimitNameFailures, LimitNameWatchPrefix, LimitNameWatchCountry)
}

// Prefix is the number prefix that the prefix limit and the conversion
// watch count by: the number less its last 4 digits, which in most numbering
// plans leaves the range an operator sells as a block.
func Prefix(digits string) string {
	if len(digits) > 4 {
		return digits[:len(digits)-4]
	}
	return digits
}

// FailuresKey names the run of wrong codes of a number of an account.
func FailuresKey(accountID int64, digits string) string {
	return fmt.Sprintf("%d:%s:%s", accountID, LimitNameFailures, digits)
}

// ipKey is what the per-IP limit counts a client address under: an IPv4
// address as it is, an IPv6 one by its /64, the block a single subscriber
// or host is given, whose 2^64 addresses would otherwise each be a fresh
// bucket.
func ipKey(clientIP string) string {
	a, err := netip.ParseAddr(clientIP)
	if err != nil || !a.Is6() || a.Is4In6() {
		return clientIP
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}

// SendLimits lists the limits a send from account a to n is judged by.
// clientIP is "" unless the operator trusts a proxy header. limits=off
// switches every one of them off, the conversion watch's blocks included.
func SendLimits(a *Account, n Number, clientIP string) []Limit {
	if a.Settings.LimitsOff {
		return nil
	}
	prefix := Prefix(n.Digits)
	candidates := []struct{ name, key, property string }{
		{"number", n.Digits, "to"},
		{"numberDaily", n.Digits, "to"},
		{"prefix", prefix, "to"},
		{"country", n.Region, "to"},
		{"ip", ipKey(clientIP), ""},
		{"account", "", ""},
		{"accountDaily", "", ""},
	}
	var out []Limit
	for _, c := range candidates {
		r := a.Settings.Rate(c.name)
		if r.Off() || (c.name == "ip" && clientIP == "") {
			continue
		}
		out = append(out, Limit{
			Name:     c.name,
			Key:      fmt.Sprintf("%d:%s:%s", a.ID, c.name, c.key),
			Rate:     r,
			Property: c.property,
		})
	}
	if max, cooldown, on := a.Settings.Failures(); on {
		out = append(out, Limit{
			Name:     LimitNameFailures,
			Key:      FailuresKey(a.ID, n.Digits),
			Rate:     Rate{Count: max, Per: cooldown},
			Property: "to",
			Kind:     LimitFailures,
		})
	}
	if a.Settings.WatchPolicy().Mode == WatchOn {
		// In monitor mode a block is only reported, so there is nothing to
		// judge.
		out = append(out,
			Limit{Name: LimitNameWatchPrefix, Key: BlockKey(a.ID, WatchPrefix, prefix), Property: "to", Kind: LimitBlocked},
			Limit{Name: LimitNameWatchCountry, Key: BlockKey(a.ID, WatchCountry, n.Region), Property: "to", Kind: LimitBlocked})
	}
	return out
}

// RunCooldown is the cooldown of the LimitFailures limit among limits, 0
// when there is none. A store keeps it with the verification it creates,
// so that a wrong code typed a whole cooldown after its number's last one
// starts a new run instead of adding to the old one.
func RunCooldown(limits []Limit) time.Duration {
	for _, l := range limits {
		if l.Kind == LimitFailures {
			return l.Rate.Per
		}
	}
	return 0
}

// Take applies the generic cell rate algorithm (GCRA) to one bucket whose
// theoretical arrival time is tat (zero for a new bucket). A bucket admits
// Count sends at once, then one every Per/Count. It returns the bucket's new
// tat when the send is allowed, or how long to wait when it is not.
//
// One timestamp per bucket is all a store keeps, and the answer is exact, so
// Retry-After is too.
func (l Limit) Take(tat, now time.Time) (next time.Time, wait time.Duration, ok bool) {
	interval := l.Rate.Per / time.Duration(l.Rate.Count)
	if tat.Before(now) {
		tat = now
	}
	next = tat.Add(interval)
	allowAt := next.Add(-l.Rate.Per)
	if now.Before(allowAt) {
		return tat, allowAt.Sub(now), false
	}
	return next, 0, true
}

// FailuresWait judges a LimitFailures limit at now for a number whose run
// of wrong codes is failures long, the last at last (zero: none). It
// returns how long the limit refuses sends (0: not at all), and whether the
// run is over because a whole cooldown passed since its last wrong code, so
// that the store may start the count again.
func (l Limit) FailuresWait(failures int, last, now time.Time) (wait time.Duration, over bool) {
	if failures == 0 {
		return 0, false
	}
	end := last.Add(l.Rate.Per)
	if !now.Before(end) {
		return 0, true
	}
	if failures < l.Rate.Count {
		return 0, false
	}
	return end.Sub(now), false
}

// BlockWait is how long a block lasting until until refuses a send at now.
func BlockWait(until, now time.Time) time.Duration {
	if until.After(now) {
		return until.Sub(now)
	}
	return 0
}

// Throttled returns the EINVALID error for a send refused by l, which a
// retry after wait would pass.
func (l Limit) Throttled(wait time.Duration) *Error {
	secs := int64((wait + time.Second - 1) / time.Second)
	var details string
	switch {
	case l.Kind == LimitFailures:
		details = fmt.Sprintf("Too many wrong codes were entered for this number (the failures limit is %d in a row); retry after %d seconds.", l.Rate.Count, secs)
	case l.Kind == LimitBlocked && l.Name == LimitNameWatchCountry:
		details = fmt.Sprintf("Codes to this country are paused because too few of those sent were verified (the conversion watch); retry after %d seconds.", secs)
	case l.Kind == LimitBlocked:
		details = fmt.Sprintf("Codes to this number range are paused because too few of those sent were verified (the conversion watch); retry after %d seconds.", secs)
	default:
		details = fmt.Sprintf("Too many codes were requested (the %s limit is %s); retry after %d seconds.", l.Name, l.Rate, secs)
	}
	return &Error{
		Code:    EINVALID,
		Message: "the request is not valid",
		Failures: []Failure{{
			Property: l.Property,
			Code:     FailThrottled,
			Details:  details,
		}},
		RetryAfter: time.Duration(secs) * time.Second,
		Limit:      l.Name,
	}
}
