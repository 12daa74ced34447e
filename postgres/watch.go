package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"verifyd"
)

// hourMS is the width of one conversion count bucket.
const hourMS = int64(time.Hour / time.Millisecond)

// hourOf is the bucket of a time.
func hourOf(t time.Time) int64 { return ms(t) / hourMS }

// tallyStepSQL counts one step of an account's verifications into
// watch_counts; the prefix is verifyd.Prefix in SQL.
const tallyStepSQL = `INSERT INTO watch_counts (account_id, prefix, country, hour, sends, verified)
	SELECT $1, CASE WHEN length(phone_number) > 4 THEN left(phone_number, length(phone_number) - 4) ELSE phone_number END,
		country, created / $4, count(*), count(*) FILTER (WHERE state = 'Verified')
	FROM verifications
	WHERE account_id = $1 AND created >= $2 AND created < $3 AND state <> 'NotSent' AND phone_number <> ALL($5::text[])
	GROUP BY 2, 3, 4
	ON CONFLICT (account_id, prefix, country, hour)
	DO UPDATE SET sends = watch_counts.sends + excluded.sends, verified = watch_counts.verified + excluded.verified`

// TallyConversions counts, for the account, every verification created in
// [since, until) that no earlier tally of the account counted. It works an
// hour of creation time at a time, each step one transaction that locks the
// account's tallied-until mark, counts from it and moves it: a tally that
// waited for the lock finds the mark moved and counts only what is left.
func (s *Store) TallyConversions(ctx context.Context, accountID int64, since, until time.Time, exclude []string) error {
	if exclude == nil {
		exclude = []string{} // <> ALL of NULL is NULL, which would skip every row
	}
	for {
		done := false
		err := s.do(ctx, func(ctx context.Context) error {
			return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "INSERT INTO watch_tallies (account_id, tallied_until) VALUES ($1, 0) ON CONFLICT DO NOTHING",
					accountID); err != nil {
					return err
				}
				var mark int64
				if err := tx.QueryRow(ctx, "SELECT tallied_until FROM watch_tallies WHERE account_id = $1 FOR UPDATE",
					accountID).Scan(&mark); err != nil {
					return err
				}
				start, to := max(mark, ms(since)), ms(until)
				if start >= to {
					done = true
					return nil
				}
				end := min(to, (start/hourMS+1)*hourMS)
				if _, err := tx.Exec(ctx, tallyStepSQL, accountID, start, end, hourMS, exclude); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, "UPDATE watch_tallies SET tallied_until = $2 WHERE account_id = $1", accountID, end)
				return err
			})
		})
		if err != nil || done {
			return err
		}
	}
}

// ListConversions returns the account's counts per prefix summed over the
// hours from the one holding since.
func (s *Store) ListConversions(ctx context.Context, accountID int64, since time.Time) ([]verifyd.Conversion, error) {
	var out []verifyd.Conversion
	err := s.do(ctx, func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, `SELECT prefix, country, sum(sends), sum(verified) FROM watch_counts
			WHERE account_id = $1 AND hour >= $2 GROUP BY prefix, country ORDER BY prefix COLLATE "C", country COLLATE "C"`,
			accountID, hourOf(since))
		var err error
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (verifyd.Conversion, error) {
			c := verifyd.Conversion{Kind: verifyd.WatchPrefix}
			var sends, verified int64
			err := row.Scan(&c.Subject, &c.Country, &sends, &verified)
			c.Sends, c.Verified = int(sends), int(verified)
			return c, err
		})
		return err
	})
	return out, err
}

// StartBlock stores b unless a block with its key lasts past b.Started.
func (s *Store) StartBlock(ctx context.Context, b *verifyd.Block) (bool, error) {
	var started bool
	err := s.do(ctx, func(ctx context.Context) error {
		tag, err := s.pool.Exec(ctx, `INSERT INTO watch_blocks (key, account_id, kind, subject, country, started, until, sends, verified, mode)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (key) DO UPDATE SET started = excluded.started, until = excluded.until, sends = excluded.sends,
				verified = excluded.verified, mode = excluded.mode, country = excluded.country
			WHERE watch_blocks.until <= excluded.started`,
			b.Key(), b.AccountID, string(b.Kind), b.Subject, b.Country, ms(b.Started), ms(b.Until), b.Sends, b.Verified, string(b.Mode))
		started = tag.RowsAffected() == 1
		return err
	})
	return started, err
}

// ListBlocks returns every account's blocks that last past now.
func (s *Store) ListBlocks(ctx context.Context, now time.Time) ([]*verifyd.Block, error) {
	var out []*verifyd.Block
	err := s.do(ctx, func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, `SELECT account_id, kind, subject, country, started, until, sends, verified, mode
			FROM watch_blocks WHERE until > $1 ORDER BY account_id, kind COLLATE "C", subject COLLATE "C"`, ms(now))
		var err error
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*verifyd.Block, error) {
			var (
				b              verifyd.Block
				kind, mode     string
				started, until int64
			)
			err := row.Scan(&b.AccountID, &kind, &b.Subject, &b.Country, &started, &until, &b.Sends, &b.Verified, &mode)
			b.Kind, b.Mode, b.Started, b.Until = verifyd.WatchKind(kind), verifyd.WatchMode(mode), fromMS(started), fromMS(until)
			return &b, err
		})
		return err
	})
	return out, err
}

// purgeAbuse deletes the runs of wrong codes that their account's cooldown
// ended, conversion counts older than the watch window, and blocks that
// ended, as of now. Each delete re-checks its condition on the rows it
// deletes.
func (s *Store) purgeAbuse(ctx context.Context, now time.Time) error {
	accounts, err := s.ListAccounts(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range accounts {
		_, cooldown, _ := a.Settings.Failures()
		errs = append(errs, s.purgeRuns(ctx, a.ID, now.Add(-cooldown)))
	}
	_, err = s.deleteInBatches(ctx, `DELETE FROM watch_counts WHERE (account_id, prefix, country, hour) IN (
		SELECT account_id, prefix, country, hour FROM watch_counts WHERE hour < $1 LIMIT $2)`, hourOf(now.Add(-verifyd.WatchWindow)))
	errs = append(errs, err)
	_, err = s.deleteInBatches(ctx, `DELETE FROM watch_blocks WHERE key IN (
		SELECT key FROM watch_blocks WHERE until <= $1 LIMIT $2) AND until <= $1`, ms(now))
	return errors.Join(append(errs, err)...)
}

// purgeRuns deletes the account's runs of wrong codes whose last wrong code
// came at or before ended. There is no index on last (every wrong code would
// move an entry in it), so the purge walks the account's runs in key order,
// a batch of keys per statement, from where the last one stopped: a delete
// that looked for ended runs from the first of the account's runs every
// time read the runs still going again at every batch. The delete
// re-checks last on the row, which another instance's wrong code may have
// just moved.
func (s *Store) purgeRuns(ctx context.Context, accountID int64, ended time.Time) error {
	after := ""
	for {
		var (
			scanned int
			last    string
		)
		err := s.do(ctx, func(ctx context.Context) error {
			return s.pool.QueryRow(ctx, `WITH batch AS (
					SELECT phone_number FROM number_failures WHERE account_id = $1 AND phone_number > $2
					ORDER BY phone_number LIMIT $4),
				gone AS (
					DELETE FROM number_failures f USING batch b
					WHERE f.account_id = $1 AND f.phone_number = b.phone_number AND f.last <= $3)
				SELECT count(*), coalesce(max(phone_number), '') FROM batch`,
				accountID, after, ms(ended), purgeBatch).Scan(&scanned, &last)
		})
		if err != nil || scanned < purgeBatch {
			return err
		}
		after = last
	}
}
