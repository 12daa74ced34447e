package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"verifyd"
	"verifyd/phone"
)

const limitsSynopsis = `limits status [--db ...]
       verifyd limits show ACCOUNT NUMBER [--db ...]
       verifyd limits reset ACCOUNT NUMBER [--db ...]`

// limits is `verifyd limits`: status shows what the conversion watch
// blocks or reports, and what comes near its threshold, for every account;
// show and reset are for support staff, who must see why one number is
// refused and clear what is the number's own. All three read the database
// as the server and the maintenance left it.
func limits(ctx context.Context, args []string, e *env) error {
	fs := e.newFlags("limits", limitsSynopsis)
	dbFlag := fs.String("db", defaultDB, "database: sqlite:PATH or postgres://...")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("limits needs a subcommand: status, show or reset")
	}
	sub, pos := pos[0], pos[1:]
	var n verifyd.Number
	switch sub {
	case "status":
		if len(pos) > 0 {
			return usagef("limits status takes no arguments, got %q", pos[0])
		}
	case "show", "reset":
		if len(pos) > 2 {
			// A number typed as written, with spaces, arrives as several
			// arguments: say how to give it rather than only that it is wrong.
			if rest := strings.Join(pos[1:], " "); validNumber(rest) {
				return usagef("limits %s takes ACCOUNT and NUMBER: give a number with spaces in quotes: %q", sub, rest)
			}
		}
		if len(pos) != 2 {
			return usagef("limits %s takes ACCOUNT and NUMBER: verifyd limits %[1]s ACCOUNT NUMBER", sub)
		}
		if !accountName.MatchString(pos[0]) {
			return usagef("account name %q: use 1 to 64 letters, digits, '.', '_' or '-'", pos[0])
		}
		if n, err = limitsNumber(pos[1]); err != nil {
			return err
		}
	default:
		return usagef("unknown limits subcommand %q: use status, show or reset", sub)
	}
	db, err := parseDB(*dbFlag)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, db)
	if err != nil {
		return fmt.Errorf("opening the database: %w", err)
	}
	defer store.Close()
	now := e.now().UTC()
	if sub == "status" {
		return limitsStatus(ctx, store, now, e.stdout)
	}
	a, err := store.FindAccountByName(ctx, pos[0])
	if err != nil {
		// An account the database does not hold exits 1, as in accounts
		// disable, enable and set: the database, not the command line, says no.
		return accountErr(pos[0], err)
	}
	if sub == "show" {
		return limitsShow(ctx, store, a, n, now, e.stdout)
	}
	return limitsReset(ctx, store, a, n, now, e.stdout)
}

// limitsNumber reads NUMBER as a create reads a to without a
// countryIsoCode: the limits count a number by the digits that gives, so
// "+44 7979 080215" and "447979080215" are the same number here too.
func limitsNumber(raw string) (verifyd.Number, error) {
	n, err := phone.Parse(raw, "")
	if err != nil {
		return verifyd.Number{}, usagef("%q is not a valid phone number: write it in international form, such as 447979080215 or +44 7979 080215", raw)
	}
	return n, nil
}

// validNumber reports whether limitsNumber takes raw.
func validNumber(raw string) bool {
	_, err := limitsNumber(raw)
	return err == nil
}

// limitsStatus prints the blocks lasting at now and the prefixes and
// countries near their account's threshold.
func limitsStatus(ctx context.Context, store verifyd.Store, now time.Time, out io.Writer) error {
	accounts, err := store.ListAccounts(ctx)
	if err != nil {
		return err
	}
	byID := make(map[int64]*verifyd.Account, len(accounts))
	for _, a := range accounts {
		byID[a.ID] = a
	}
	blocks, err := store.ListBlocks(ctx, now)
	if err != nil {
		return err
	}
	var near []verifyd.Finding
	for _, a := range accounts {
		p := a.Settings.WatchPolicy()
		if p.Mode == verifyd.WatchOff {
			continue
		}
		prefixes, err := store.ListConversions(ctx, a.ID, now.Add(-verifyd.WatchWindow))
		if err != nil {
			return err
		}
		for _, f := range p.Findings(a.ID, prefixes) {
			if f.Verdict == verifyd.VerdictNear {
				near = append(near, f)
			}
		}
	}

	fmt.Fprintf(out, "Conversion watch as of %s: sends over the last %s, each tallied %s after it was made.\n",
		now.Format(time.RFC3339), formatHours(verifyd.WatchWindow), verifyd.WatchDelay)
	fmt.Fprintln(out, "\nBlocked:")
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if len(blocks) == 0 {
		fmt.Fprintln(w, "none")
	} else {
		fmt.Fprintln(w, "ACCOUNT\tKIND\tSUBJECT\tSENDS\tVERIFIED\tRATE\tSTARTED\tUNTIL\tEFFECT")
	}
	for _, b := range blocks {
		name, effect := fmt.Sprint(b.AccountID), "refusing sends"
		if a := byID[b.AccountID]; a != nil {
			name = a.Name
			if mode := a.Settings.WatchPolicy().Mode; mode != verifyd.WatchOn {
				effect = "reported only (watch=" + string(mode) + ")"
			}
		}
		c := verifyd.Conversion{Kind: b.Kind, Subject: b.Subject, Country: b.Country, Sends: b.Sends, Verified: b.Verified}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", name, b.Kind, subject(c), b.Sends, b.Verified,
			percent(c.Rate()), b.Started.UTC().Format(time.RFC3339), b.Until.UTC().Format(time.RFC3339), effect)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nNear the threshold:")
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if len(near) == 0 {
		fmt.Fprintln(w, "none")
	} else {
		fmt.Fprintln(w, "ACCOUNT\tKIND\tSUBJECT\tSENDS\tVERIFIED\tRATE\tTHRESHOLD")
	}
	for _, f := range near {
		c := f.Conversion
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\t%s of %d sends or more\n", byID[f.AccountID].Name, c.Kind, subject(c),
			c.Sends, c.Verified, percent(c.Rate()), percent(f.Policy.MinRate), f.Policy.MinSends)
	}
	return w.Flush()
}

// subject writes a prefix as the range it stands for.
func subject(c verifyd.Conversion) string {
	if c.Kind == verifyd.WatchPrefix {
		return c.Subject + "xxxx"
	}
	return c.Subject
}

func percent(r float64) string { return fmt.Sprintf("%.1f%%", 100*r) }

func formatHours(d time.Duration) string { return fmt.Sprintf("%dh", int(d/time.Hour)) }

// limitsShow prints, for each limit a send from a to n is judged by, what
// it counts at now and whether a send now passes it, judged as a create
// judges it: Limit.Take on the stored bucket, FailuresWait on the stored
// run, BlockWait on the block. The per-IP limit is left out: a number has
// no client address.
func limitsShow(ctx context.Context, store verifyd.Store, a *verifyd.Account, n verifyd.Number, now time.Time, out io.Writer) error {
	// now as exactly as the waits and the instants they end (stamp), so
	// that it plus a wait is the until shown.
	fmt.Fprintf(out, "Limits of account %s on sends to %s (%s) as of %s:\n", a.Name, n.Digits, n.Region, stamp(now))
	// Refusals that come before any limit, in the order a create meets
	// them: authentication, then the request's number.
	var refusal string
	if a.Disabled {
		refusal = "the account is disabled"
		fmt.Fprintf(out, "Disabled: the account is disabled, so all its requests are refused 401 before any limit "+
			"('verifyd accounts enable %s' enables it).\n", a.Name)
	}
	if !phone.Allowed(a.Settings.Countries, n.Region) {
		if refusal == "" {
			refusal = "the number is outside the account's countries"
		}
		fmt.Fprintf(out, "Not allowed: the account's countries (%s) leave out %s, so every send to this number is refused "+
			"with %s, whatever its limits.\n", strings.Join(a.Settings.Countries, ", "), n.Region, verifyd.FailCountryNotAllowed)
	}
	if a.Settings.LimitsOff {
		fmt.Fprintf(out, "none: the account has limits=off, so nothing limits its sends ('verifyd accounts set %s limits=on' turns them on)\n", a.Name)
		return nil
	}
	if _, test := a.Settings.TestNumber(n.Digits); test {
		// A create to a test number is judged by no limit (see the API's
		// create), though its wrong codes are still kept.
		fmt.Fprintf(out, "none: %s is one of the account's testNumbers, whose sends count toward no limit and no limit refuses, "+
			"whatever its sends and wrong codes\n", n.Digits)
		return nil
	}
	ls := verifyd.SendLimits(a, n, "")
	var keys []string
	for _, l := range ls {
		if l.Kind == verifyd.LimitRate {
			keys = append(keys, l.Key)
		}
	}
	buckets, err := store.ReadBuckets(ctx, keys)
	if err != nil {
		return err
	}
	run, err := store.ReadRun(ctx, a.ID, n.Digits)
	if err != nil {
		return err
	}
	blocks, err := numberBlocks(ctx, store, a, n, now)
	if err != nil {
		return err
	}

	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "LIMIT\tRULE\tCOUNTED NOW\tA SEND NOW")
	var (
		worst   *verifyd.Limit
		longest time.Duration
	)
	for i, l := range ls {
		var (
			rule, counted string
			wait          time.Duration
		)
		switch l.Kind {
		case verifyd.LimitRate:
			b := buckets[l.Key]
			rule, counted = l.Rate.String(), plural(l.Counted(b, now), "send")
			_, wait, _ = l.Take(b, now)
		case verifyd.LimitFailures:
			var over bool
			wait, over = l.FailuresWait(run.Failures, run.Last, now)
			rule = fmt.Sprintf("%d wrong codes in a row, for %s after the last", l.Rate.Count, period(l.Rate.Per))
			counted = runText(run, over)
		case verifyd.LimitBlocked:
			rule, counted = "conversion watch on "+watchSubject(l, n), "no block"
			if b := blocks[l.Key]; b != nil {
				wait = verifyd.BlockWait(b.Until, now)
				counted = fmt.Sprintf("blocked since %s (%d sends, %d verified)", stamp(b.Started), b.Sends, b.Verified)
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", l.Name, rule, counted, verdict(l, wait, now))
		if wait > 0 && (worst == nil || wait > longest) {
			worst, longest = &ls[i], wait
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}

	switch {
	case refusal != "":
		fmt.Fprintf(out, "A send now is refused: %s.\n", refusal)
	case worst == nil:
		fmt.Fprintln(out, "A send now passes.")
	default:
		// A create answers the longest wait, so that its retry passes them all.
		fmt.Fprintf(out, "A send now is refused by the %s limit: %s.\n", worst.Name, verdict(*worst, longest, now))
	}
	fmt.Fprintf(out, "Not shown: the ip limit (%s), which counts by the client's address, not the number.\n", a.Settings.Rate("ip"))
	var off []string
	for _, name := range verifyd.LimitNames() {
		if _, isRate := verifyd.DefaultRates[name]; isRate && name != "ip" && a.Settings.Rate(name).Off() {
			off = append(off, name)
		}
	}
	if _, _, on := a.Settings.Failures(); !on {
		off = append(off, verifyd.LimitNameFailures)
		if run.Failures > 0 {
			fmt.Fprintf(out, "Wrong codes: %s; failures is off, so they refuse nothing.\n", runText(run, false))
		}
	}
	if len(off) > 0 {
		fmt.Fprintf(out, "Off for this account: %s.\n", strings.Join(off, ", "))
	}
	switch mode := a.Settings.WatchPolicy().Mode; mode {
	case verifyd.WatchOn:
		// Its blocks are rows of the table.
	case verifyd.WatchOff:
		fmt.Fprintln(out, "Conversion watch: off.")
	default:
		found := false
		for _, key := range []string{verifyd.BlockKey(a.ID, verifyd.WatchPrefix, verifyd.Prefix(n.Digits)), verifyd.BlockKey(a.ID, verifyd.WatchCountry, n.Region)} {
			b := blocks[key]
			if b == nil {
				continue
			}
			found = true
			fmt.Fprintf(out, "Conversion watch (watch=%s): %s %s blocked until %s, reported only: it refuses nothing.\n",
				mode, b.Kind, subject(verifyd.Conversion{Kind: b.Kind, Subject: b.Subject}), stamp(b.Until))
		}
		if !found {
			fmt.Fprintf(out, "Conversion watch (watch=%s): no block on %sxxxx or %s.\n", mode, verifyd.Prefix(n.Digits), n.Region)
		}
	}
	return nil
}

// numberBlocks returns, by key, the account's blocks lasting past now on
// n's prefix or country: those the conversion watch judges a send to n by.
func numberBlocks(ctx context.Context, store verifyd.Store, a *verifyd.Account, n verifyd.Number, now time.Time) (map[string]*verifyd.Block, error) {
	all, err := store.ListBlocks(ctx, now)
	if err != nil {
		return nil, err
	}
	out := map[string]*verifyd.Block{}
	for _, b := range all {
		if b.AccountID == a.ID && (b.Kind == verifyd.WatchPrefix && b.Subject == verifyd.Prefix(n.Digits) ||
			b.Kind == verifyd.WatchCountry && b.Subject == n.Region) {
			out[b.Key()] = b
		}
	}
	return out, nil
}

// watchSubject is what a conversion watch limit of a send to n is about.
func watchSubject(l verifyd.Limit, n verifyd.Number) string {
	if l.Name == verifyd.LimitNameWatchCountry {
		return n.Region
	}
	return verifyd.Prefix(n.Digits) + "xxxx"
}

// verdict says whether a send at now passes a limit that would make it
// wait wait, and if not, until when, with the Retry-After a create would
// answer.
func verdict(l verifyd.Limit, wait time.Duration, now time.Time) string {
	if wait <= 0 {
		return "passes"
	}
	// Shown in milliseconds, as the difference of the two times shown, so
	// that the "as of" time plus the wait is the until.
	until := now.Add(wait)
	shown := until.Truncate(time.Millisecond).Sub(now.Truncate(time.Millisecond))
	return fmt.Sprintf("refused for %s, until %s (Retry-After: %d)", shown, stamp(until), l.Throttled(wait).RetryAfter/time.Second)
}

// runText describes a run of wrong codes.
func runText(r verifyd.Run, over bool) string {
	if r.Failures == 0 {
		return "no wrong codes"
	}
	s := fmt.Sprintf("%s in a row, the last at %s", plural(r.Failures, "wrong code"), stamp(r.Last))
	if over {
		s += " (over: the next send starts the count again)"
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// period writes a period as the settings take it ("24h", "2d").
func period(d time.Duration) string {
	text, _ := verifyd.Period(d).MarshalText()
	return string(text)
}

// stamp writes a time in UTC to the millisecond: finer says nothing to a
// reader, and whole seconds would show an "until" up to a second early.
func stamp(t time.Time) string {
	return t.UTC().Truncate(time.Millisecond).Format("2006-01-02T15:04:05.999Z07:00")
}

// limitsReset deletes what the limits keep of n that is n's own: its
// number and numberDaily buckets and its run of wrong codes. The prefix,
// country, ip and account buckets count other numbers' sends too, and stay.
// The server reads buckets and runs afresh at each create, so the next send
// sees the reset.
func limitsReset(ctx context.Context, store verifyd.Store, a *verifyd.Account, n verifyd.Number, now time.Time, out io.Writer) error {
	names := verifyd.NumberLimitNames()
	keys := make([]string, len(names))
	for i, name := range names {
		keys[i] = verifyd.BucketKey(a.ID, name, n.Digits)
	}
	deleted, run, err := store.ResetNumber(ctx, a.ID, n.Digits, keys)
	if err != nil {
		return err
	}
	var cleared []string
	for i, name := range names {
		b, ok := deleted[keys[i]]
		if !ok {
			continue
		}
		l := verifyd.Limit{Name: name, Rate: a.Settings.Rate(name)}
		cleared = append(cleared, fmt.Sprintf("the %s bucket (%s counted)", name, plural(l.Counted(b, now), "send")))
	}
	if run.Failures > 0 {
		cleared = append(cleared, fmt.Sprintf("the run of %s", runText(run, false)))
	}
	what := "nothing (no " + strings.Join(names, " or ") + " bucket, no run of wrong codes)"
	if len(cleared) > 0 {
		what = strings.Join(cleared, ", ")
	}
	fmt.Fprintf(out, "account %s, number %s: cleared %s; the prefix, country, ip and account limits, shared with other numbers, are unchanged\n",
		a.Name, n.Digits, what)
	return nil
}
