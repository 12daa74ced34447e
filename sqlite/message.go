package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"verifyd"
)

// dueSubquery picks the n first due messages by the messages_due index;
// its WHERE and ORDER BY must stay word for word the index's, or SQLite
// scans the table.
const dueSubquery = `SELECT vid FROM messages
	WHERE state = 'Queued' AND max(next_attempt, lease_until) <= ?1
	ORDER BY max(next_attempt, lease_until) LIMIT ?2`

// ClaimMessages leases up to max due messages (Queued, NextAttempt and any
// earlier lease passed) until now+lease, counting an attempt on each. Due
// messages whose Deadline has passed (now is not before it) are not
// returned: they become DeliveryExpired and their text is wiped. A message
// is never returned to two claims while its lease holds: every claim is a
// write, and writes take turns.
func (s *Store) ClaimMessages(ctx context.Context, now time.Time, lease time.Duration, max int) ([]*verifyd.Message, error) {
	if max <= 0 {
		return nil, nil
	}
	if lease <= 0 {
		// A lease that has already run out would let one claim return a
		// message twice.
		return nil, fmt.Errorf("sqlite: claim lease %v is not positive", lease)
	}
	var out []*verifyd.Message
	err := s.w.write(ctx, func(t *tx) error {
		out = out[:0]
		for len(out) < max {
			n := max - len(out)
			// Expire the past-deadline ones among the next n due first,
			// then lease the next n that are left.
			res, err := t.exec(`UPDATE messages SET state = 'Expired', error = 'deadline passed', sealed = NULL,
					lease_until = 0, updated = ?1
				WHERE vid IN (`+dueSubquery+`) AND deadline <= ?1`, ms(now), n)
			if err != nil {
				return err
			}
			expired, err := res.RowsAffected()
			if err != nil {
				return err
			}
			claimed, err := claimDue(t, now, now.Add(lease), n)
			if err != nil {
				return err
			}
			out = append(out, claimed...)
			// With nothing expired, the n just leased were the first n due
			// and held no expired one: no more are due, or we have max.
			if expired == 0 {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// claimDue leases the next n due messages that are not past their deadline.
func claimDue(t *tx, now, leaseUntil time.Time, n int) ([]*verifyd.Message, error) {
	rows, err := t.query(`UPDATE messages SET attempts = attempts + 1, lease_until = ?3
		WHERE vid IN (`+dueSubquery+`) AND deadline > ?1
		RETURNING request_id, account_id, to_number, from_id, sealed, attempts, next_attempt, deadline, created`,
		ms(now), n, ms(leaseUntil))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*verifyd.Message
	for rows.Next() {
		var (
			m                              verifyd.Message
			nextAttempt, deadline, created int64
		)
		if err := rows.Scan(&m.RequestID, &m.AccountID, &m.To, &m.From, &m.Sealed, &m.Attempts,
			&nextAttempt, &deadline, &created); err != nil {
			return nil, err
		}
		m.NextAttempt, m.Deadline, m.Created = fromMS(nextAttempt), fromMS(deadline), fromMS(created)
		out = append(out, &m)
	}
	return out, rows.Err()
}

// FinishMessages records the outcome of claimed messages in one
// transaction, releases their leases, and matches any receipt that arrived
// before its carrier id was known. A result for a message no longer queued
// (withdrawn by a cancel, expired, purged) changes nothing: a cancelled
// message must never be queued again.
func (s *Store) FinishMessages(ctx context.Context, results []verifyd.MessageResult) error {
	for _, r := range results {
		switch r.State {
		case verifyd.DeliveryQueued, verifyd.DeliverySubmitted, verifyd.DeliveryFailed, verifyd.DeliveryExpired:
		default:
			return fmt.Errorf("sqlite: a delivery worker cannot finish a message as %q", r.State)
		}
	}
	if len(results) == 0 {
		return nil
	}
	return s.w.write(ctx, func(t *tx) error {
		for _, r := range results {
			if err := finishMessage(t, r); err != nil {
				return err
			}
		}
		return nil
	})
}

func finishMessage(t *tx, r verifyd.MessageResult) error {
	var (
		vid int64
		err error
	)
	if r.State == verifyd.DeliveryQueued {
		err = t.queryRow(`UPDATE messages SET next_attempt = ?, lease_until = 0, error = ?, updated = ?
			WHERE vid = (SELECT vid FROM verifications WHERE id = ?) AND state = 'Queued' RETURNING vid`,
			ms(r.NextAttempt), r.Error, ms(r.At), r.RequestID).Scan(&vid)
	} else {
		err = t.queryRow(`UPDATE messages SET state = ?, sealed = NULL, lease_until = 0, error = ?, updated = ?
			WHERE vid = (SELECT vid FROM verifications WHERE id = ?) AND state = 'Queued' RETURNING vid`,
			string(r.State), r.Error, ms(r.At), r.RequestID).Scan(&vid)
	}
	if errors.Is(err, sql.ErrNoRows) || err != nil || r.State != verifyd.DeliverySubmitted {
		return ignoreNoRows(err)
	}
	for part, carrierID := range r.CarrierIDs {
		// A carrier may reuse an id long after: the newest message owns it.
		if _, err := t.exec(`INSERT INTO message_parts (carrier_id, vid, part, state, error, updated)
				VALUES (?, ?, ?, 'Submitted', '', ?)
				ON CONFLICT (carrier_id) DO UPDATE SET vid = excluded.vid, part = excluded.part,
					state = excluded.state, error = excluded.error, updated = excluded.updated`,
			carrierID, vid, part, ms(r.At)); err != nil {
			return err
		}
	}
	for _, carrierID := range r.CarrierIDs {
		var (
			state, errText string
			at             int64
		)
		err := t.queryRow("DELETE FROM orphan_receipts WHERE carrier_id = ? RETURNING state, error, at", carrierID).
			Scan(&state, &errText, &at)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return err
		}
		early := verifyd.Receipt{CarrierID: carrierID, State: verifyd.DeliveryState(state), Error: errText, At: fromMS(at)}
		if _, err := applyReceipt(t, early); err != nil {
			return err
		}
	}
	return nil
}

// ignoreNoRows treats "no such row" as nothing to do.
func ignoreNoRows(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	return err
}

// finalReceipt reports whether a receipt state ends a part's delivery;
// intermediate reports (enroute, accepted) change nothing.
func finalReceipt(s verifyd.DeliveryState) bool {
	switch s {
	case verifyd.DeliveryDelivered, verifyd.DeliveryUndeliverable, verifyd.DeliveryExpired, verifyd.DeliveryFailed:
		return true
	}
	return false
}

// RecordReceipt records a carrier's receipt against the message part with
// that carrier id. A part's first final receipt is the one that counts, so
// the same receipt twice changes nothing. A message fails with its first
// failed part and is Delivered once every part is. A receipt for an id not
// yet known is kept (for a day) and matched when FinishMessages records the
// id. It returns only once the receipt is committed.
func (s *Store) RecordReceipt(ctx context.Context, r verifyd.Receipt) error {
	if !finalReceipt(r.State) {
		return nil
	}
	return s.w.write(ctx, func(t *tx) error {
		matched, err := applyReceipt(t, r)
		if err != nil || matched {
			return err
		}
		_, err = t.exec(`INSERT INTO orphan_receipts (carrier_id, state, error, at) VALUES (?, ?, ?, ?)
			ON CONFLICT (carrier_id) DO NOTHING`, r.CarrierID, string(r.State), r.Error, ms(r.At))
		return err
	})
}

// applyReceipt records a final receipt on its part and the part's message;
// matched is false when no part has that carrier id.
func applyReceipt(t *tx, r verifyd.Receipt) (matched bool, err error) {
	var (
		vid       int64
		partState string
	)
	err = t.queryRow("SELECT vid, state FROM message_parts WHERE carrier_id = ?", r.CarrierID).Scan(&vid, &partState)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil || partState != string(verifyd.DeliverySubmitted) {
		return err == nil, err
	}
	if _, err := t.exec("UPDATE message_parts SET state = ?, error = ?, updated = ? WHERE carrier_id = ?",
		string(r.State), r.Error, ms(r.At), r.CarrierID); err != nil {
		return true, err
	}
	if r.State == verifyd.DeliveryDelivered {
		// Delivered only once no part is left undelivered.
		_, err = t.exec(`UPDATE messages SET state = 'Delivered', error = ?2, updated = ?3
			WHERE vid = ?1 AND state = 'Submitted'
				AND NOT EXISTS (SELECT 1 FROM message_parts WHERE vid = ?1 AND state != 'Delivered')`,
			vid, r.Error, ms(r.At))
	} else {
		_, err = t.exec(`UPDATE messages SET state = ?, error = ?, updated = ?
			WHERE vid = ? AND state = 'Submitted'`, string(r.State), r.Error, ms(r.At), vid)
	}
	return true, err
}
