package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"verifyd"
)

const limitsSynopsis = `limits status [--db ...]`

// limits is `verifyd limits status`: what the conversion watch blocks or
// reports, and what comes near its threshold, for every account, read from
// the database as the maintenance left it.
func limits(ctx context.Context, args []string, e *env) error {
	fs := e.newFlags("limits", limitsSynopsis)
	dbFlag := fs.String("db", defaultDB, "database: sqlite:PATH or postgres://...")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "status" {
		return usagef("limits takes one subcommand: status")
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
	return limitsStatus(ctx, store, e.now().UTC(), e.stdout)
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
