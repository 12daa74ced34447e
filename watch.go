package verifyd

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// The conversion watch guards against SMS pumping: bots that request codes
// for numbers in premium ranges they are paid for, and never use the codes.
// Real users verify most of the codes they ask for; pumped ranges verify
// almost none. The watch counts, per account, the sends to each number
// prefix and how many of them ended Verified, in hourly buckets over the
// last WatchWindow, and sums the prefixes per country. A prefix or country
// whose share of verified sends falls below the account's threshold, over a
// sample large enough to mean something, is blocked for a cooldown (or, in
// monitor mode, only reported).
//
// Sends are tallied from the verifications table by the periodic
// maintenance, once their outcome is final, rather than counted on every
// create and validate: the hot paths stay as they are, and a verification
// created before now-WatchDelay can no longer become Verified, so a tally
// never has to be corrected.

// WatchMode is what the conversion watch does for an account.
type WatchMode string

// The watch modes. The zero value is WatchMonitor.
const (
	WatchOff     WatchMode = "off"     // counts and judges nothing
	WatchMonitor WatchMode = "monitor" // reports blocks (logs, metrics, limits status) but refuses nothing
	WatchOn      WatchMode = "on"      // refuses sends under a block
)

// WatchKind is what a conversion or a block is about.
type WatchKind string

// The kinds of subject the watch judges.
const (
	WatchPrefix  WatchKind = "prefix"  // Subject is a number prefix (see Prefix)
	WatchCountry WatchKind = "country" // Subject is an ISO 3166-1 alpha-2 region
)

// Watch defaults and bounds.
const (
	// WatchWindow is how far back the watch looks.
	WatchWindow = 24 * time.Hour
	// WatchDelay is how old a verification must be before it is tallied:
	// past MaxValidity nothing can verify it any more, and a minute more
	// covers instances whose clocks disagree a little.
	WatchDelay = MaxValidity + time.Minute
	// DefaultWatchMinSends is the smallest sample the watch judges.
	DefaultWatchMinSends = 100
	// DefaultWatchMinRate is the share of sends that must end Verified.
	DefaultWatchMinRate = 0.2
	// DefaultWatchCooldown is how long a block lasts.
	DefaultWatchCooldown = 24 * time.Hour
)

// WatchPolicy is an account's conversion watch settings, defaults applied.
type WatchPolicy struct {
	Mode     WatchMode
	MinSends int
	MinRate  float64 // 0 to 1
	Cooldown time.Duration
}

// WatchPolicy returns the account's conversion watch settings. An account
// with limits=off is not watched either.
func (s Settings) WatchPolicy() WatchPolicy {
	p := WatchPolicy{Mode: s.Watch, MinSends: s.WatchMinSends, MinRate: s.WatchMinRate, Cooldown: time.Duration(s.WatchCooldown)}
	if p.Mode == "" {
		p.Mode = WatchMonitor
	}
	if s.LimitsOff {
		p.Mode = WatchOff
	}
	if p.MinSends == 0 {
		p.MinSends = DefaultWatchMinSends
	}
	if p.MinRate == 0 {
		p.MinRate = DefaultWatchMinRate
	}
	if p.Cooldown == 0 {
		p.Cooldown = DefaultWatchCooldown
	}
	return p
}

// Conversion is how many sends to one subject there were in the window,
// and how many of them ended Verified.
type Conversion struct {
	Kind     WatchKind
	Subject  string // the prefix digits, or the alpha-2 region
	Country  string // the subject's region (the subject itself for a country)
	Sends    int
	Verified int
}

// Rate is the share of sends that ended Verified.
func (c Conversion) Rate() float64 {
	if c.Sends == 0 {
		return 0
	}
	return float64(c.Verified) / float64(c.Sends)
}

// Verdict is what the watch makes of a Conversion.
type Verdict int

// The verdicts, from harmless to blocked.
const (
	VerdictOK Verdict = iota
	// VerdictNear is a subject an operator may want to look at: below the
	// threshold on a sample not yet large enough, or on a large enough
	// sample less than half again above the threshold.
	VerdictNear
	VerdictBlock
)

// Judge applies the policy to c. It compares whole numbers (the threshold
// in basis points), so that a rate exactly at the threshold is never on the
// wrong side of it by a rounding error.
func (p WatchPolicy) Judge(c Conversion) Verdict {
	bp := int64(math.Round(p.MinRate * 10_000))
	verified, sends := int64(c.Verified)*10_000, int64(c.Sends)
	below := verified < bp*sends
	switch {
	case c.Sends >= p.MinSends && below:
		return VerdictBlock
	case c.Sends >= p.MinSends && 2*verified < 3*bp*sends,
		2*c.Sends >= p.MinSends && below:
		return VerdictNear
	}
	return VerdictOK
}

// WithCountries returns the prefix conversions followed by their sums per
// country, each group ordered by subject.
func WithCountries(prefixes []Conversion) []Conversion {
	out := slices.Clone(prefixes)
	slices.SortFunc(out, func(a, b Conversion) int { return strings.Compare(a.Subject, b.Subject) })
	byCountry := map[string]*Conversion{}
	var countries []string
	for _, c := range prefixes {
		sum, ok := byCountry[c.Country]
		if !ok {
			sum = &Conversion{Kind: WatchCountry, Subject: c.Country, Country: c.Country}
			byCountry[c.Country] = sum
			countries = append(countries, c.Country)
		}
		sum.Sends += c.Sends
		sum.Verified += c.Verified
	}
	slices.Sort(countries)
	for _, c := range countries {
		out = append(out, *byCountry[c])
	}
	return out
}

// Block is a subject the watch found converting too little: while it
// lasts, an account in WatchOn refuses sends to it.
type Block struct {
	AccountID int64
	Kind      WatchKind
	Subject   string
	Country   string
	Started   time.Time
	Until     time.Time
	// Sends and Verified are the conversion that started the block: its
	// reason.
	Sends    int
	Verified int
	// Mode is the account's mode when the block started; whether it refuses
	// sends follows the account's current mode.
	Mode WatchMode
}

// BlockKey names the block on one subject of an account.
func BlockKey(accountID int64, kind WatchKind, subject string) string {
	return fmt.Sprintf("%d:watch.%s:%s", accountID, kind, subject)
}

// Key is the block's key, which a LimitBlocked limit names.
func (b *Block) Key() string { return BlockKey(b.AccountID, b.Kind, b.Subject) }

// WatchStore keeps the conversion watch's counts and blocks.
type WatchStore interface {
	// TallyConversions counts, for the account, every verification created
	// in [since, until) that no earlier tally of the account counted: a send
	// under its number's Prefix and Country in the hour of its creation,
	// and a verified send too if it is Verified. NotSent verifications and
	// those to the numbers in exclude are skipped. However many tallies
	// run at once, in any number of processes, each verification is counted
	// at most once. Callers pass an until no later than now-WatchDelay.
	TallyConversions(ctx context.Context, accountID int64, since, until time.Time, exclude []string) error
	// ListConversions returns the account's counts per prefix (Kind
	// WatchPrefix) summed over the hours from the one holding since.
	ListConversions(ctx context.Context, accountID int64, since time.Time) ([]Conversion, error)
	// StartBlock stores b unless a block with its Key lasts past b.Started,
	// and reports whether it did.
	StartBlock(ctx context.Context, b *Block) (bool, error)
	// ListBlocks returns every account's blocks that last past now, ordered
	// by account, kind and subject.
	ListBlocks(ctx context.Context, now time.Time) ([]*Block, error)
}

// Finding is a subject the watch judged worth telling an operator about.
type Finding struct {
	AccountID  int64
	Conversion Conversion
	Verdict    Verdict
	Policy     WatchPolicy
}

// WatchReport is what one run of the watch found.
type WatchReport struct {
	Started []*Block  // blocks this run started
	Active  []*Block  // every block lasting past the run, its own included
	Near    []Finding // subjects near the threshold, not blocked
}

// Findings returns the findings (block or near) among an account's prefix
// conversions and their country sums.
func (p WatchPolicy) Findings(accountID int64, prefixes []Conversion) []Finding {
	var out []Finding
	for _, c := range WithCountries(prefixes) {
		if v := p.Judge(c); v != VerdictOK {
			out = append(out, Finding{AccountID: accountID, Conversion: c, Verdict: v, Policy: p})
		}
	}
	return out
}

// RunWatch runs the conversion watch once as of now: for every watched
// account it tallies the verifications that became final since the last
// run, judges each prefix and country over the window, and starts a block
// on each one below the threshold that has none. Run it from one instance
// at a time (it is safe, only wasteful, to overlap).
func RunWatch(ctx context.Context, s interface {
	AccountStore
	WatchStore
}, now time.Time) (*WatchReport, error) {
	accounts, err := s.ListAccounts(ctx)
	if err != nil {
		return nil, err
	}
	since := now.Add(-WatchWindow)
	report := &WatchReport{}
	for _, a := range accounts {
		p := a.Settings.WatchPolicy()
		if p.Mode == WatchOff || a.Disabled {
			continue
		}
		var exclude []string
		for digits := range a.Settings.TestNumbers {
			exclude = append(exclude, digits)
		}
		slices.Sort(exclude)
		if err := s.TallyConversions(ctx, a.ID, since, now.Add(-WatchDelay), exclude); err != nil {
			return report, fmt.Errorf("tallying account %s: %w", a.Name, err)
		}
		prefixes, err := s.ListConversions(ctx, a.ID, since)
		if err != nil {
			return report, fmt.Errorf("conversions of account %s: %w", a.Name, err)
		}
		for _, f := range p.Findings(a.ID, prefixes) {
			if f.Verdict == VerdictNear {
				report.Near = append(report.Near, f)
				continue
			}
			c := f.Conversion
			b := &Block{AccountID: a.ID, Kind: c.Kind, Subject: c.Subject, Country: c.Country,
				Started: now, Until: now.Add(p.Cooldown), Sends: c.Sends, Verified: c.Verified, Mode: p.Mode}
			started, err := s.StartBlock(ctx, b)
			if err != nil {
				return report, fmt.Errorf("blocking for account %s: %w", a.Name, err)
			}
			if started {
				report.Started = append(report.Started, b)
			}
		}
	}
	report.Active, err = s.ListBlocks(ctx, now)
	return report, err
}
