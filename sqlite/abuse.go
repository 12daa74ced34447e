package sqlite

import (
	"database/sql"
	"errors"
	"strings"
	"time"

	"verifyd"
)

// guardVerdict is what the limits that are judged rather than charged
// (LimitFailures, LimitBlocked) say of one create.
type guardVerdict struct {
	waits map[int]time.Duration // by index in the limits; absent: no refusal
	// runOver is set when the number's run of wrong codes ended with a
	// cooldown: the create forgets it, so that the count starts again.
	runOver  bool
	lastFail int64
}

// judgeGuards reads what the create's failure and block limits depend on,
// in the create's transaction, and judges them at now. A create without
// such limits reads nothing.
func judgeGuards(t *tx, v *verifyd.Verification, limits []verifyd.Limit, now time.Time) (guardVerdict, error) {
	var (
		g       guardVerdict
		blocked []any
		until   map[string]int64
	)
	for _, l := range limits {
		if l.Kind == verifyd.LimitBlocked {
			blocked = append(blocked, l.Key)
		}
	}
	if len(blocked) > 0 {
		var err error
		if until, err = readBlocks(t, blocked); err != nil {
			return g, err
		}
	}
	for i, l := range limits {
		var wait time.Duration
		switch l.Kind {
		case verifyd.LimitFailures:
			var failures int
			err := t.queryRow("SELECT failures, last FROM number_failures WHERE account_id = ? AND phone_number = ?",
				v.AccountID, v.PhoneNumber).Scan(&failures, &g.lastFail)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return g, err
			}
			var over bool
			wait, over = l.FailuresWait(failures, fromMS(g.lastFail), now)
			g.runOver = g.runOver || over
		case verifyd.LimitBlocked:
			if u, ok := until[l.Key]; ok {
				wait = verifyd.BlockWait(fromMS(u), now)
			}
		}
		if wait > 0 {
			if g.waits == nil {
				g.waits = map[int]time.Duration{}
			}
			g.waits[i] = wait
		}
	}
	return g, nil
}

// readBlocks returns the end of each block among keys that exists.
func readBlocks(t *tx, keys []any) (map[string]int64, error) {
	rows, err := t.query("SELECT key, until FROM watch_blocks WHERE key IN ("+
		strings.TrimSuffix(strings.Repeat("?, ", len(keys)), ", ")+")", keys...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]int64, len(keys))
	for rows.Next() {
		var (
			key   string
			until int64
		)
		if err := rows.Scan(&key, &until); err != nil {
			return nil, err
		}
		out[key] = until
	}
	return out, rows.Err()
}

// forgetRun deletes the number's run of wrong codes that a cooldown ended,
// unless a wrong code came since it was read.
func forgetRun(t *tx, v *verifyd.Verification, last int64) error {
	_, err := t.exec("DELETE FROM number_failures WHERE account_id = ? AND phone_number = ? AND last = ?",
		v.AccountID, v.PhoneNumber, last)
	return err
}
