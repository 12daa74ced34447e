package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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
			claimed, due, err := claimDue(t, now, now.Add(lease), n, out)
			if err != nil {
				return err
			}
			out = claimed
			// With none expired among the n first due, or fewer than n
			// due, no more are due or we have max.
			if due < n || len(out) == max {
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

// claimDue takes the n first due messages in one statement: it leases those
// not past their deadline, appending them to out, and expires the others.
// due is how many it took.
func claimDue(t *tx, now, leaseUntil time.Time, n int, out []*verifyd.Message) (_ []*verifyd.Message, due int, err error) {
	rows, err := t.query(`UPDATE messages SET
			state = iif(deadline <= ?1, 'Expired', state),
			error = iif(deadline <= ?1, 'deadline passed', error),
			sealed = iif(deadline <= ?1, NULL, sealed),
			updated = iif(deadline <= ?1, ?1, updated),
			lease_until = iif(deadline <= ?1, 0, ?3),
			attempts = attempts + iif(deadline <= ?1, 0, 1)
		WHERE vid IN (`+dueSubquery+`)
		RETURNING state = 'Expired', request_id, account_id, to_number, from_id, sealed, attempts,
			next_attempt, deadline, created`,
		ms(now), n, ms(leaseUntil))
	if err != nil {
		return out, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			m                              verifyd.Message
			expired                        bool
			nextAttempt, deadline, created int64
		)
		if err := rows.Scan(&expired, &m.RequestID, &m.AccountID, &m.To, &m.From, &m.Sealed, &m.Attempts,
			&nextAttempt, &deadline, &created); err != nil {
			return out, due, err
		}
		due++
		if expired {
			continue
		}
		m.NextAttempt, m.Deadline, m.Created = fromMS(nextAttempt), fromMS(deadline), fromMS(created)
		out = append(out, &m)
	}
	return out, due, rows.Err()
}

// FinishMessages records the outcome of claimed messages in one
// transaction, releases their leases, and matches any receipt that arrived
// before its carrier id was known. A result for a message no longer queued
// (withdrawn by a cancel, expired, purged) changes nothing: a cancelled
// message must never be queued again.
func (s *Store) FinishMessages(ctx context.Context, results []verifyd.MessageResult) error {
	for _, r := range results {
		switch r.State {
		case verifyd.DeliveryQueued, verifyd.DeliverySubmitted, verifyd.DeliveryDelivered, verifyd.DeliveryFailed,
			verifyd.DeliveryExpired:
		default:
			return fmt.Errorf("sqlite: a delivery worker cannot finish a message as %q", r.State)
		}
	}
	if len(results) == 0 {
		return nil
	}
	if f, ok := newFinish(results); ok {
		return s.w.write(ctx, f.run)
	}
	return s.w.write(ctx, func(t *tx) error { return finishEach(t, results) })
}

// finishEach records results one message after the other.
func finishEach(t *tx, results []verifyd.MessageResult) error {
	for _, r := range results {
		if err := finishMessage(t, r); err != nil {
			return err
		}
	}
	return nil
}

// finish is a FinishMessages call done with a few statements for the whole
// batch rather than a few per message: it takes the receipts that came
// before their carrier ids, works out in Go what each message and part
// becomes, and writes that, each row once.
type finish struct {
	results    []verifyd.MessageResult
	carrierIDs []any // of every part
}

// newFinish prepares the bulk way, or says that results need the
// statement-per-message one: a request or carrier id given twice, where
// the order of the rows decides.
func newFinish(results []verifyd.MessageResult) (*finish, bool) {
	f := &finish{results: results}
	requests := make(map[string]struct{}, len(results))
	var carriers map[string]struct{}
	for _, r := range results {
		if _, dup := requests[r.RequestID]; dup {
			return nil, false
		}
		requests[r.RequestID] = struct{}{}
		if !withParts(r.State) {
			continue
		}
		for _, id := range r.CarrierIDs {
			if carriers == nil {
				carriers = make(map[string]struct{}, len(results))
			}
			if _, dup := carriers[id]; dup {
				return nil, false
			}
			carriers[id] = struct{}{}
			if r.State == verifyd.DeliverySubmitted {
				// Only a submitted part can have a receipt waiting: a final
				// sender's parts get none.
				f.carrierIDs = append(f.carrierIDs, id)
			}
		}
	}
	return f, true
}

// early is a receipt kept before its carrier id was known.
type early struct {
	state, err string
	at         int64
	prov       bool // a provisional failure (verifyd.Receipt.Provisional)
}

func (f *finish) run(t *tx) error {
	earlies, err := f.takeEarly(t)
	if err != nil {
		return err
	}

	// What each message becomes: the result, then, part by part, its early
	// receipts as applyReceipt would record them one after the other.
	type outcome struct {
		state, err string
		updated    int64
		prov       bool    // failed by a provisional receipt
		parts      []early // state "" for a part that waits for its receipt
	}
	outcomes := make([]outcome, len(f.results))
	msgs := make([]any, 0, 5*len(f.results))
	for i, r := range f.results {
		o := outcome{state: string(r.State), err: r.Error, updated: ms(r.At)}
		if r.State == verifyd.DeliverySubmitted && len(earlies) > 0 {
			o.parts = make([]early, len(r.CarrierIDs))
			var order []int // parts with an early receipt, in the order the receipts came
			for p, id := range r.CarrierIDs {
				if _, ok := earlies[id]; ok {
					order = append(order, p)
				}
			}
			slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(earlies[r.CarrierIDs[a]].at, earlies[r.CarrierIDs[b]].at) })
			// A part has one early receipt at most, so a part failed
			// provisionally stays so here, and so does its message.
			for _, p := range order {
				e := earlies[r.CarrierIDs[p]]
				o.parts[p] = e
				submitted := o.state == string(verifyd.DeliverySubmitted)
				switch {
				case e.state == string(verifyd.DeliveryDelivered):
					if submitted && allDelivered(o.parts) {
						o.state, o.err, o.updated = e.state, e.err, e.at
					}
				case e.prov:
					if submitted {
						o.state, o.err, o.updated, o.prov = e.state, e.err, e.at, true
					}
				case submitted || o.prov:
					o.state, o.err, o.updated, o.prov = e.state, e.err, e.at, false
				}
			}
		}
		outcomes[i] = o
		msgs = append(msgs, r.RequestID, o.state, o.err, o.updated, ms(r.NextAttempt), r.Attempt, o.prov)
	}

	// A message no longer queued is left as it is, and so are the early
	// receipts of its carrier ids. RETURNING sees only the messages table;
	// request ids are unique in a bulk finish.
	vids := make(map[string]int64, len(f.results))
	err = t.queryRows(`UPDATE messages SET state = u.s, error = u.e, updated = u.u, lease_until = 0,
			sealed = iif(u.s = 'Queued', messages.sealed, NULL),
			next_attempt = iif(u.s = 'Queued', u.n, messages.next_attempt), provisional = u.p
		FROM (SELECT v.vid, r.column2 AS s, r.column3 AS e, r.column4 AS u, r.column5 AS n, r.column6 AS a,
				r.column7 AS p
			FROM (VALUES /*rows*/) AS r JOIN verifications v ON v.id = r.column1) AS u
		WHERE messages.vid = u.vid AND messages.state = 'Queued' AND (u.a = 0 OR messages.attempts = u.a)
		RETURNING messages.request_id, messages.vid`, 7, msgs, func(rows *sql.Rows) error {
		var (
			id  string
			vid int64
		)
		err := rows.Scan(&id, &vid)
		vids[id] = vid
		return err
	})
	if err != nil {
		return err
	}

	parts := make([]any, 0, 7*len(f.carrierIDs))
	for i, r := range f.results {
		if !withParts(r.State) {
			continue
		}
		vid, done := vids[r.RequestID]
		for p, id := range r.CarrierIDs {
			if !done {
				if e, ok := earlies[id]; ok {
					if err := keepEarly(t, id, e); err != nil {
						return err
					}
				}
				continue
			}
			e := early{state: string(r.State), at: ms(r.At)}
			if o := outcomes[i]; o.parts != nil && o.parts[p].state != "" {
				e = o.parts[p]
			}
			parts = append(parts, id, vid, p, e.state, e.err, e.at, e.prov)
		}
	}
	ids := make([]any, 0, len(parts)/7)
	for i := 0; i < len(parts); i += 7 {
		ids = append(ids, parts[i])
	}
	if err := keepTakenOverFailures(t, ids); err != nil {
		return err
	}
	// A carrier may reuse an id long after: the newest message owns it.
	_, err = t.execRows(`INSERT INTO message_parts (carrier_id, vid, part, state, error, updated, provisional)
		VALUES /*rows*/
		ON CONFLICT (carrier_id) DO UPDATE SET vid = excluded.vid, part = excluded.part,
			state = excluded.state, error = excluded.error, updated = excluded.updated,
			provisional = excluded.provisional`, 7, parts)
	return err
}

// takeEarly deletes and returns the kept receipts of the batch's carrier ids.
func (f *finish) takeEarly(t *tx) (map[string]early, error) {
	var out map[string]early
	err := t.queryRows(`DELETE FROM orphan_receipts WHERE carrier_id IN (/*rows*/)
		RETURNING carrier_id, state, error, at, provisional`, 0, f.carrierIDs, func(rows *sql.Rows) error {
		var (
			id string
			e  early
		)
		if err := rows.Scan(&id, &e.state, &e.err, &e.at, &e.prov); err != nil {
			return err
		}
		if out == nil {
			out = make(map[string]early)
		}
		out[id] = e
		return nil
	})
	return out, err
}

// keepEarly puts back a receipt taken for a message that was not finished.
func keepEarly(t *tx, carrierID string, e early) error {
	_, err := t.exec(`INSERT INTO orphan_receipts (carrier_id, state, error, at, provisional) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (carrier_id) DO NOTHING`, carrierID, e.state, e.err, e.at, e.prov)
	return err
}

// keepTakenOverFailures is for the carrier ids a finish is about to give
// to a newer message: an older message whose part with such an id failed
// provisionally can no longer get the receipt that would replace it (it
// would go to the newer message), so its failure stands for good rather
// than give way once its other parts are delivered.
func keepTakenOverFailures(t *tx, carrierIDs []any) error {
	_, err := t.execRows(`UPDATE messages SET provisional = 0
		WHERE provisional AND vid IN (SELECT vid FROM message_parts WHERE carrier_id IN (/*rows*/) AND provisional)`,
		0, carrierIDs)
	return err
}

// withParts reports whether a result in state s records its carrier ids.
func withParts(s verifyd.DeliveryState) bool {
	return s == verifyd.DeliverySubmitted || s == verifyd.DeliveryDelivered
}

// allDelivered reports whether every part has a Delivered receipt.
func allDelivered(parts []early) bool {
	for _, p := range parts {
		if p.state != string(verifyd.DeliveryDelivered) {
			return false
		}
	}
	return true
}

func finishMessage(t *tx, r verifyd.MessageResult) error {
	var (
		vid int64
		err error
	)
	if r.State == verifyd.DeliveryQueued {
		err = t.queryRow(`UPDATE messages SET next_attempt = ?, lease_until = 0, error = ?, updated = ?
			WHERE vid = (SELECT vid FROM verifications WHERE id = ?) AND state = 'Queued' AND (?5 = 0 OR attempts = ?5) RETURNING vid`,
			ms(r.NextAttempt), r.Error, ms(r.At), r.RequestID, r.Attempt).Scan(&vid)
	} else {
		err = t.queryRow(`UPDATE messages SET state = ?, sealed = NULL, lease_until = 0, error = ?, updated = ?
			WHERE vid = (SELECT vid FROM verifications WHERE id = ?) AND state = 'Queued' AND (?5 = 0 OR attempts = ?5) RETURNING vid`,
			string(r.State), r.Error, ms(r.At), r.RequestID, r.Attempt).Scan(&vid)
	}
	if errors.Is(err, sql.ErrNoRows) || err != nil || !withParts(r.State) {
		return ignoreNoRows(err)
	}
	ids := make([]any, len(r.CarrierIDs))
	for i, id := range r.CarrierIDs {
		ids[i] = id
	}
	if err := keepTakenOverFailures(t, ids); err != nil {
		return err
	}
	for part, carrierID := range r.CarrierIDs {
		// A carrier may reuse an id long after: the newest message owns it.
		if _, err := t.exec(`INSERT INTO message_parts (carrier_id, vid, part, state, error, updated, provisional)
				VALUES (?, ?, ?, ?, '', ?, 0)
				ON CONFLICT (carrier_id) DO UPDATE SET vid = excluded.vid, part = excluded.part,
					state = excluded.state, error = excluded.error, updated = excluded.updated,
					provisional = excluded.provisional`,
			carrierID, vid, part, string(r.State), ms(r.At)); err != nil {
			return err
		}
	}
	if r.State == verifyd.DeliveryDelivered {
		return nil
	}
	var earlies []verifyd.Receipt
	for _, carrierID := range r.CarrierIDs {
		var (
			state, errText string
			at             int64
			prov           bool
		)
		err := t.queryRow("DELETE FROM orphan_receipts WHERE carrier_id = ? RETURNING state, error, at, provisional",
			carrierID).Scan(&state, &errText, &at, &prov)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return err
		}
		earlies = append(earlies, verifyd.Receipt{CarrierID: carrierID, State: verifyd.DeliveryState(state), Error: errText,
			At: fromMS(at), Provisional: prov})
	}
	// In the order they came, as if each had come after the submit.
	slices.SortStableFunc(earlies, func(a, b verifyd.Receipt) int { return a.At.Compare(b.At) })
	for _, early := range earlies {
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
// the same receipt twice changes nothing, unless it is provisional: then
// the part's next definitive one replaces it. A message fails with its first
// failed part (a definitive failure replacing a provisional one) and is
// Delivered once every part is. A receipt for an id not
// yet known is kept (for a day) and matched when FinishMessages records the
// id. It returns only once the receipt is committed.
func (s *Store) RecordReceipt(ctx context.Context, r verifyd.Receipt) error {
	if !finalReceipt(r.State) {
		return nil
	}
	return s.w.writeBulk(ctx, receiptBulk, &r, func(t *tx) error { return recordReceipt(t, r) })
}

// recordReceipt records one receipt.
func recordReceipt(t *tx, r verifyd.Receipt) error {
	matched, err := applyReceipt(t, r)
	if err != nil || matched {
		return err
	}
	_, err = t.exec(`INSERT INTO orphan_receipts (carrier_id, state, error, at, provisional) VALUES (?, ?, ?, ?, ?)
		`+keepOrphan, r.CarrierID, string(r.State), r.Error, ms(r.At), r.Provisional)
	return err
}

// keepOrphan ends the statements that keep a receipt for a carrier id not
// known yet: a receipt already kept stands, unless it is provisional and
// the new one is not.
const keepOrphan = `ON CONFLICT (carrier_id) DO UPDATE SET state = excluded.state, error = excluded.error,
		at = excluded.at, provisional = excluded.provisional
	WHERE orphan_receipts.provisional AND NOT excluded.provisional`

// receiptBulk records the receipts waiting together: the ones for carrier
// ids not known yet, the usual case for a sender that reports at once, in
// one go; the others one by one, in the order they came.
var receiptBulk = &bulk{run: func(t *tx, ops []*op) error {
	args := make([]any, 0, 5*len(ops))
	for _, o := range ops {
		r := o.arg.(*verifyd.Receipt)
		args = append(args, r.CarrierID, string(r.State), r.Error, ms(r.At), r.Provisional)
	}
	// Rows go in the order of the VALUES, so a provisional receipt and the
	// one that replaces it may share a statement.
	kept, err := t.execRows(`INSERT INTO orphan_receipts (carrier_id, state, error, at, provisional)
		SELECT column1, column2, column3, column4, column5 FROM (VALUES /*rows*/)
		WHERE NOT EXISTS (SELECT 1 FROM message_parts WHERE carrier_id = column1)
		`+keepOrphan, 5, args)
	if err != nil || int(kept) == len(ops) {
		return err // every one kept for later
	}
	// Some were known, or repeats of a receipt already kept.
	ids := make([]any, len(ops))
	for i, o := range ops {
		ids[i] = o.arg.(*verifyd.Receipt).CarrierID
	}
	known := map[string]bool{}
	err = t.queryRows("SELECT carrier_id FROM message_parts WHERE carrier_id IN (/*rows*/)", 0, ids,
		func(rows *sql.Rows) error {
			var id string
			err := rows.Scan(&id)
			known[id] = true
			return err
		})
	if err != nil {
		return err
	}
	for _, o := range ops {
		if r := o.arg.(*verifyd.Receipt); known[r.CarrierID] {
			if _, err := applyReceipt(t, *r); err != nil {
				return err
			}
		}
	}
	return nil
}}

// applyReceipt records a final receipt on its part and the part's message;
// matched is false when no part has that carrier id. A part takes it while
// Submitted, or while its receipt is provisional and this one is not; a
// message, while Submitted or failed provisionally (every other state is
// final). A message failed provisionally never has a Submitted one's
// parts: while it is, some part is provisional.
func applyReceipt(t *tx, r verifyd.Receipt) (matched bool, err error) {
	var (
		vid       int64
		partState string
		partProv  bool
	)
	err = t.queryRow("SELECT vid, state, provisional FROM message_parts WHERE carrier_id = ?", r.CarrierID).
		Scan(&vid, &partState, &partProv)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil || (partState != string(verifyd.DeliverySubmitted) && (!partProv || r.Provisional)) {
		return err == nil, err
	}
	if _, err := t.exec("UPDATE message_parts SET state = ?, error = ?, updated = ?, provisional = ? WHERE carrier_id = ?",
		string(r.State), r.Error, ms(r.At), r.Provisional, r.CarrierID); err != nil {
		return true, err
	}
	switch {
	case r.State == verifyd.DeliveryDelivered:
		// Delivered once no part is left undelivered. A message failed
		// provisionally is worked out again once no part is provisional:
		// Delivered, or Submitted while some part waits.
		_, err = t.exec(`UPDATE messages SET
				state = iif(EXISTS (SELECT 1 FROM message_parts WHERE vid = ?1 AND state != 'Delivered'),
					'Submitted', 'Delivered'),
				error = ?2, updated = ?3, provisional = 0
			WHERE vid = ?1 AND (state = 'Submitted' OR provisional)
				AND NOT EXISTS (SELECT 1 FROM message_parts WHERE vid = ?1 AND provisional)
				AND (provisional OR NOT EXISTS (SELECT 1 FROM message_parts WHERE vid = ?1 AND state != 'Delivered'))`,
			vid, r.Error, ms(r.At))
	case r.Provisional:
		// A message already failed keeps its first failure.
		_, err = t.exec(`UPDATE messages SET state = ?, error = ?, updated = ?, provisional = 1
			WHERE vid = ? AND state = 'Submitted'`, string(r.State), r.Error, ms(r.At), vid)
	default:
		// A definitive failure also replaces a provisional one.
		_, err = t.exec(`UPDATE messages SET state = ?, error = ?, updated = ?, provisional = 0
			WHERE vid = ? AND (state = 'Submitted' OR provisional)`, string(r.State), r.Error, ms(r.At), vid)
	}
	return true, err
}
