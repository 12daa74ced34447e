package verifyd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
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

// ParsePeriod reads a period of a second up to MaxPeriod: a Go duration
// ("10m", "90s") or a whole number of days ("1d"). The cap also keeps a
// count of days from wrapping round time.Duration, which would turn
// "5/200000d" into a negative period, a limit silently off.
func ParsePeriod(s string) (time.Duration, error) {
	var d time.Duration
	if days, isDays := strings.CutSuffix(s, "d"); isDays {
		nd, err := strconv.Atoi(days)
		if err != nil || nd < 1 {
			return 0, notAPeriod(s)
		}
		if nd > int(MaxPeriod/(24*time.Hour)) {
			return 0, tooLong(s)
		}
		d = time.Duration(nd) * 24 * time.Hour
	} else {
		var err error
		d, err = time.ParseDuration(s)
		if err != nil || d < time.Second {
			// time.ParseDuration's error says nothing of the range, and is
			// the same for an overflow as for a typo.
			return 0, notAPeriod(s)
		}
	}
	if d > MaxPeriod {
		return 0, tooLong(s)
	}
	return d, nil
}

func notAPeriod(s string) error {
	return fmt.Errorf("%q is not a period from 1s to %s: write a duration (90s, 10m, 36h) or a number of days (1d)", s, formatPeriod(MaxPeriod))
}

func tooLong(period string) error {
	return fmt.Errorf("%q is too long: a period may be at most %s", period, formatPeriod(MaxPeriod))
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
	// LimitRate is a sliding window of Rate (see Take), charged once per
	// send.
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

// BucketKey names the bucket of the named rate limit of an account for
// subject: a number's digits, its prefix, its country, a client address, or
// "" for the account-wide limits.
func BucketKey(accountID int64, name, subject string) string {
	return fmt.Sprintf("%d:%s:%s", accountID, name, subject)
}

// NumberLimitNames lists the rate limits whose buckets count the sends to
// one number alone, keyed by its digits. Every other rate limit's bucket is
// shared with other numbers (a prefix, a country, a client, the account),
// so clearing one number's limits must leave those be.
func NumberLimitNames() []string { return []string{"number", "numberDaily"} }

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
			Key:      BucketKey(a.ID, c.name, c.key),
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

// Take judges one more send at now against the sliding window of l.Rate:
// it is allowed while fewer than Count sends were charged to b in the
// Per before it, so that no window of Per ever holds more than Count, the
// first ones included ("5/10m" lets 5 through, then the 6th at 10 minutes
// after the 1st). It returns the bucket with the send charged when it is
// allowed, or how long until it would be when it is not, exactly: a retry
// after wait passes, one before it does not.
func (l Limit) Take(b Bucket, now time.Time) (next Bucket, wait time.Duration, ok bool) {
	g := l.Rate.grain()
	sends := b.live(l.Rate, now)
	n := 0
	for _, s := range sends {
		n += s.n
	}
	if n >= l.Rate.Count {
		// The oldest sends must leave until one place is free; a slot leaves
		// whole, once its last possible send is a Per old.
		over := n - l.Rate.Count + 1
		for _, s := range sends {
			if over -= s.n; over <= 0 {
				return b, s.at.Add(g + l.Rate.Per).Sub(now), false
			}
		}
	}
	at := now
	if g > 0 {
		at = now.Truncate(g)
	}
	// A now before the newest send (creates that reach the store out of
	// order, an instance whose clock is behind) is charged as at that send:
	// the bucket stays oldest first, and Until never moves back before a
	// send that still counts, which the purge would otherwise delete.
	if k := len(sends) - 1; k >= 0 && sends[k].at.After(at) {
		at = sends[k].at
	}
	out := make([]slot, len(sends), len(sends)+1)
	copy(out, sends)
	if k := len(out) - 1; k >= 0 && out[k].at.Equal(at) {
		out[k].n++
	} else {
		out = append(out, slot{at: at, n: 1})
	}
	return Bucket{sends: out, Until: at.Add(g + l.Rate.Per)}, 0, true
}

// Counted is how many of the sends kept in b count against l at now: those
// still in its window, which Take judges the next send by.
func (l Limit) Counted(b Bucket, now time.Time) int {
	if l.Rate.Off() {
		return 0 // no window: nothing counts
	}
	n := 0
	for _, s := range b.live(l.Rate, now) {
		n += s.n
	}
	return n
}

// exactUpTo is the largest Count whose sends a bucket keeps one by one, to
// the nanosecond. A larger rate (a country's 50,000 a day) counts its sends
// in slots of Per/exactUpTo, and judges each slot as if all its sends were
// at its end: never more than Count in a Per, at the price of refusing up to
// one slot's length early. Either way a bucket keeps at most about exactUpTo
// entries.
const exactUpTo = 64

func (r Rate) grain() time.Duration {
	if r.Count <= exactUpTo {
		return 0
	}
	return r.Per / exactUpTo
}

// Bucket is what a store keeps of one rate limit's key: the sends charged
// to it that may still count, oldest first. The zero Bucket has none.
type Bucket struct {
	sends []slot
	// Until is when the last send leaves the window: from then on the
	// bucket counts nothing, and a store may delete it.
	Until time.Time
	// gcra is the theoretical arrival time of a bucket stored by an older
	// verifyd, which kept one timestamp per key (see DecodeBucket).
	gcra time.Time
}

type slot struct {
	at time.Time // when its sends were; the start of its grain
	n  int
}

// Sends counts the sends b keeps, those whose window has passed included
// until the next charge drops them.
func (b Bucket) Sends() int {
	n := 0
	for _, s := range b.sends {
		n += s.n
	}
	return n
}

// live returns b's sends that still count at now under r, oldest first.
func (b Bucket) live(r Rate, now time.Time) []slot {
	g := r.grain()
	if !b.gcra.IsZero() {
		return gcraSends(b.gcra, r, now)
	}
	i := 0
	for i < len(b.sends) && !b.sends[i].at.Add(g+r.Per).After(now) {
		i++
	}
	return b.sends[i:]
}

// gcraSends reads the GCRA state tat of an older bucket as the sends it
// stood for: each of its outstanding emission intervals is a send that
// leaves the window when that interval would have ended, so a bucket
// charged before an upgrade refuses until about when it did before. A rate
// over exactUpTo counts them in its grain's slots, as Take does its own
// sends (each slot leaving once its last send would have), so that its
// bucket keeps at most about exactUpTo slots, not one per send: the
// intervals of a slot are counted at once, however large the Count.
func gcraSends(tat time.Time, r Rate, now time.Time) []slot {
	interval := r.Per / time.Duration(r.Count)
	g := r.grain()
	var out []slot
	if g == 0 {
		for i := r.Count - 1; i >= 0; i-- {
			leaves := tat.Add(-time.Duration(i) * interval)
			if leaves.After(now) {
				out = append(out, slot{at: leaves.Add(-r.Per), n: 1})
			}
		}
		return out
	}
	// The sends i = 0, 1, ... leave at tat - i*interval; those before k
	// leave after now-g, so their slots may still count, and no others'.
	from := now.Add(-g)
	if !tat.After(from) {
		return nil
	}
	k := r.Count
	if interval > 0 {
		if q := (tat.Sub(from)-1)/interval + 1; q < time.Duration(k) {
			k = int(q)
		}
	}
	for i := k - 1; i >= 0; {
		at := tat.Add(-time.Duration(i)*interval - r.Per).Truncate(g)
		// The slot holds the sends from i down to the first, j, that leaves
		// after the slot's own end.
		j := 0
		if d := tat.Sub(at.Add(g + r.Per)); d >= 0 && interval > 0 {
			j = int(d/interval) + 1
		}
		if at.Add(g + r.Per).After(now) {
			out = append(out, slot{at: at, n: i - j + 1})
		}
		i = j - 1
	}
	return out
}

// bucketVersion leads every encoded Bucket, so that another layout can be
// told apart later.
const bucketVersion = 1

// Encode returns b as a store keeps it: a version byte, then each slot's
// time (Unix nanoseconds, each after the first as the step from the one
// before) and count, as varints.
func (b Bucket) Encode() []byte {
	out := make([]byte, 0, 1+len(b.sends)*(binary.MaxVarintLen64+2))
	out = append(out, bucketVersion)
	var prev int64
	for _, s := range b.sends {
		t := s.at.UnixNano()
		out = binary.AppendVarint(out, t-prev)
		out = binary.AppendUvarint(out, uint64(s.n))
		prev = t
	}
	return out
}

// DecodeBucket reads a bucket a store kept: data from Encode, or, for a row
// an older verifyd wrote (data empty), its one GCRA timestamp tat.
func DecodeBucket(data []byte, tat time.Time) (Bucket, error) {
	if len(data) == 0 {
		if tat.UnixNano() <= 0 {
			return Bucket{}, nil
		}
		return Bucket{gcra: tat, Until: tat}, nil
	}
	if data[0] != bucketVersion {
		return Bucket{}, fmt.Errorf("limit bucket of unknown version %d", data[0])
	}
	b := Bucket{Until: tat}
	var t int64
	for rest := data[1:]; len(rest) > 0; {
		d, k := binary.Varint(rest)
		if k <= 0 {
			return Bucket{}, errors.New("limit bucket: bad time")
		}
		rest = rest[k:]
		n, k := binary.Uvarint(rest)
		if k <= 0 || n == 0 || n > math.MaxInt32 {
			return Bucket{}, errors.New("limit bucket: bad count")
		}
		rest = rest[k:]
		t += d
		b.sends = append(b.sends, slot{at: time.Unix(0, t), n: int(n)})
	}
	return b, nil
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

// RunAtCap reports whether run, a number's run of wrong codes, is at the
// failures limit at now: sends to the number are refused, and so is any
// guess at the codes of its requests still pending, which would make the
// run longer than the limit allows in a row (SECURITY.md). A test number
// is never at it, as it is never refused a send.
func (s Settings) RunAtCap(digits string, run Run, now time.Time) bool {
	max, cooldown, on := s.Failures()
	if !on {
		return false
	}
	if _, test := s.TestNumber(digits); test {
		return false
	}
	l := Limit{Rate: Rate{Count: max, Per: cooldown}, Kind: LimitFailures}
	wait, _ := l.FailuresWait(run.Failures, run.Last, now)
	return wait > 0
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
