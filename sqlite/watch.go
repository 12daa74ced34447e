package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"verifyd"
)

// hourMS is the width of one conversion count bucket.
const hourMS = int64(time.Hour / time.Millisecond)

// hourOf is the bucket of a time.
func hourOf(t time.Time) int64 { return ms(t) / hourMS }

// errTallied stops a tally step that another tally got to first.
var errTallied = errors.New("sqlite: tallied by another process")

// prefixSQL is verifyd.Prefix in SQL.
const prefixSQL = `CASE WHEN length(phone_number) > 4 THEN substr(phone_number, 1, length(phone_number) - 4) ELSE phone_number END`

// tallyRow is the count of one prefix, country and hour in a tally step.
type tallyRow struct {
	prefix, country  string
	hour             int64
	sends, verifieds int64
}

// TallyConversions counts, for the account, every verification created in
// [since, until) that no earlier tally of the account counted. It works an
// hour of creation time at a time: the counting is a read on a reader
// connection (verifications that old no longer change), and its result goes
// in with a compare-and-set of the account's tallied-until mark, so a step
// another process got to first is dropped rather than counted twice.
func (s *Store) TallyConversions(ctx context.Context, accountID int64, since, until time.Time, exclude []string) error {
	var (
		mark sql.NullInt64
		from = ms(since)
		to   = ms(until)
	)
	if err := s.rdb.QueryRowContext(ctx, "SELECT tallied_until FROM watch_tallies WHERE account_id = ?", accountID).
		Scan(&mark); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	query := `SELECT ` + prefixSQL + `, country, created / ?, count(*), sum(state = 'Verified')
		FROM verifications
		WHERE account_id = ? AND created >= ? AND created < ? AND state <> 'NotSent'`
	if len(exclude) > 0 {
		query += " AND phone_number NOT IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(exclude)), ", ") + ")"
	}
	query += " GROUP BY 1, 2, 3"
	for {
		start := from
		if mark.Valid && mark.Int64 > start {
			start = mark.Int64
		}
		if start >= to {
			return nil
		}
		end := min(to, (start/hourMS+1)*hourMS)
		args := []any{hourMS, accountID, start, end}
		for _, n := range exclude {
			args = append(args, n)
		}
		counts, err := s.tallyStep(ctx, query, args)
		if err != nil {
			return err
		}
		err = s.w.write(ctx, func(t *tx) error {
			var res sql.Result
			var err error
			if mark.Valid {
				res, err = t.exec("UPDATE watch_tallies SET tallied_until = ? WHERE account_id = ? AND tallied_until = ?",
					end, accountID, mark.Int64)
			} else {
				res, err = t.exec("INSERT INTO watch_tallies (account_id, tallied_until) VALUES (?, ?) ON CONFLICT DO NOTHING",
					accountID, end)
			}
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return errors.Join(err, errTallied)
			}
			for _, c := range counts {
				if _, err := t.exec(`INSERT INTO watch_counts (account_id, prefix, country, hour, sends, verified)
					VALUES (?, ?, ?, ?, ?, ?)
					ON CONFLICT (account_id, prefix, country, hour)
					DO UPDATE SET sends = sends + excluded.sends, verified = verified + excluded.verified`,
					accountID, c.prefix, c.country, c.hour, c.sends, c.verifieds); err != nil {
					return err
				}
			}
			return nil
		})
		if errors.Is(err, errTallied) {
			return nil // another process is tallying this account
		}
		if err != nil {
			return err
		}
		mark = sql.NullInt64{Int64: end, Valid: true}
	}
}

// tallyStep counts one step's verifications.
func (s *Store) tallyStep(ctx context.Context, query string, args []any) ([]tallyRow, error) {
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tallyRow
	for rows.Next() {
		var c tallyRow
		if err := rows.Scan(&c.prefix, &c.country, &c.hour, &c.sends, &c.verifieds); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ListConversions returns the account's counts per prefix summed over the
// hours from the one holding since.
func (s *Store) ListConversions(ctx context.Context, accountID int64, since time.Time) ([]verifyd.Conversion, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT prefix, country, sum(sends), sum(verified) FROM watch_counts
		WHERE account_id = ? AND hour >= ? GROUP BY prefix, country ORDER BY prefix, country`, accountID, hourOf(since))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []verifyd.Conversion
	for rows.Next() {
		c := verifyd.Conversion{Kind: verifyd.WatchPrefix}
		if err := rows.Scan(&c.Subject, &c.Country, &c.Sends, &c.Verified); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// StartBlock stores b unless a block with its key lasts past b.Started.
func (s *Store) StartBlock(ctx context.Context, b *verifyd.Block) (bool, error) {
	var started bool
	err := s.w.write(ctx, func(t *tx) error {
		res, err := t.exec(`INSERT INTO watch_blocks (key, account_id, kind, subject, country, started, until, sends, verified, mode)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET started = excluded.started, until = excluded.until, sends = excluded.sends,
				verified = excluded.verified, mode = excluded.mode, country = excluded.country
			WHERE until <= excluded.started`,
			b.Key(), b.AccountID, string(b.Kind), b.Subject, b.Country, ms(b.Started), ms(b.Until), b.Sends, b.Verified, string(b.Mode))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		started = n == 1
		return err
	})
	return started, err
}

// ListBlocks returns every account's blocks that last past now.
func (s *Store) ListBlocks(ctx context.Context, now time.Time) ([]*verifyd.Block, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT account_id, kind, subject, country, started, until, sends, verified, mode
		FROM watch_blocks WHERE until > ? ORDER BY account_id, kind, subject`, ms(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*verifyd.Block
	for rows.Next() {
		var (
			b              verifyd.Block
			kind, mode     string
			started, until int64
		)
		if err := rows.Scan(&b.AccountID, &kind, &b.Subject, &b.Country, &started, &until, &b.Sends, &b.Verified, &mode); err != nil {
			return nil, err
		}
		b.Kind, b.Mode, b.Started, b.Until = verifyd.WatchKind(kind), verifyd.WatchMode(mode), fromMS(started), fromMS(until)
		out = append(out, &b)
	}
	return out, rows.Err()
}
