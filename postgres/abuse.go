package postgres

import (
	"github.com/jackc/pgx/v5"

	"verifyd"
)

// runKey is one number of one account.
type runKey struct {
	account int64
	number  string
}

// run is a number's run of wrong codes as a create group read it.
type run struct {
	failures int
	last     int64 // Unix milliseconds
}

// guards is what a create group read for its failure and block limits, and
// the runs it found over.
type guards struct {
	runs   map[runKey]run
	blocks map[string]int64 // block key -> until, Unix milliseconds

	overAccounts []int64
	overNumbers  []string
	overLast     []int64
}

// queueReads adds to first the reads of the runs of the given numbers and
// of the blocks with the given keys.
func (g *guards) queueReads(first *pgx.Batch, accounts []int64, numbers []string, blockKeys []string) {
	if len(accounts) > 0 {
		first.Queue(`SELECT n.account_id, n.phone_number, n.failures, n.last
			FROM number_failures n JOIN unnest($1::bigint[], $2::text[]) AS u(a, p)
			ON n.account_id = u.a AND n.phone_number = u.p`, accounts, numbers).
			Query(func(rows pgx.Rows) error {
				var (
					k runKey
					r run
				)
				_, err := pgx.ForEachRow(rows, []any{&k.account, &k.number, &r.failures, &r.last}, func() error {
					g.runs[k] = r
					return nil
				})
				return err
			})
	}
	if len(blockKeys) > 0 {
		first.Queue("SELECT b.key, b.until FROM unnest($1::text[]) AS u(key) JOIN watch_blocks b ON b.key = u.key", blockKeys).
			Query(func(rows pgx.Rows) error {
				var (
					key   string
					until int64
				)
				_, err := pgx.ForEachRow(rows, []any{&key, &until}, func() error {
					g.blocks[key] = until
					return nil
				})
				return err
			})
	}
}

// forget drops the run of v's number, which a cooldown ended, for the rest
// of the group and for queueForget.
func (g *guards) forget(v *verifyd.Verification) {
	k := runKey{v.AccountID, v.PhoneNumber}
	r, ok := g.runs[k]
	if !ok {
		return
	}
	delete(g.runs, k)
	g.overAccounts, g.overNumbers, g.overLast = append(g.overAccounts, k.account), append(g.overNumbers, k.number), append(g.overLast, r.last)
}

// queueForget adds to second the deletion of the runs found over, each
// unless a wrong code came since it was read.
func (g *guards) queueForget(second *pgx.Batch) {
	if len(g.overAccounts) == 0 {
		return
	}
	second.Queue(`DELETE FROM number_failures n USING unnest($1::bigint[], $2::text[], $3::bigint[]) AS u(a, p, l)
		WHERE n.account_id = u.a AND n.phone_number = u.p AND n.last = u.l`, g.overAccounts, g.overNumbers, g.overLast)
}
