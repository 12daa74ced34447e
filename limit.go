package verifyd

import (
	"fmt"
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
	var d time.Duration
	if days, isDays := strings.CutSuffix(per, "d"); isDays {
		nd, err := strconv.Atoi(days)
		if err != nil || nd < 1 {
			return Rate{}, fmt.Errorf("%q is not a rate period", per)
		}
		d = time.Duration(nd) * 24 * time.Hour
	} else if d, err = time.ParseDuration(per); err != nil || d < time.Second {
		return Rate{}, fmt.Errorf("%q is not a rate period of a second or more", per)
	}
	return Rate{Count: n, Per: d}, nil
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

// Limit is one bucket a send is charged to.
type Limit struct {
	Name     string // which setting, e.g. "number"
	Key      string // the bucket, unique across accounts
	Rate     Rate
	Property string // "to" for per-number limits, "" for account-wide ones
}

// SendLimits lists the buckets a send from account a to n is charged to.
// clientIP is "" unless the operator trusts a proxy header.
func SendLimits(a *Account, n Number, clientIP string) []Limit {
	if a.Settings.LimitsOff {
		return nil
	}
	prefix := n.Digits
	if len(prefix) > 4 {
		prefix = prefix[:len(prefix)-4]
	}
	candidates := []struct{ name, key, property string }{
		{"number", n.Digits, "to"},
		{"numberDaily", n.Digits, "to"},
		{"prefix", prefix, "to"},
		{"country", n.Region, "to"},
		{"ip", clientIP, ""},
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
	return out
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

// Throttled returns the EINVALID error for a send refused by l.
func (l Limit) Throttled(wait time.Duration) *Error {
	secs := int64((wait + time.Second - 1) / time.Second)
	return &Error{
		Code:    EINVALID,
		Message: "the request is not valid",
		Failures: []Failure{{
			Property: l.Property,
			Code:     FailThrottled,
			Details:  fmt.Sprintf("Too many codes were requested (the %s limit is %s); retry after %d seconds.", l.Name, l.Rate, secs),
		}},
		RetryAfter: time.Duration(secs) * time.Second,
		Limit:      l.Name,
	}
}
