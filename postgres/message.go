package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"verifyd"
)

// claimMessages takes the first $3 due messages, in due order, skipping
// rows another claim (on any instance) has locked, so a message is never
// handed to two claims; it expires those past their deadline and leases the
// others. It reads only the head of the queue, however long the queue is,
// and returns one row whatever it did: the number expired, then the leased
// message, if any (NULLs when none). "lease_until >= 0", always true, names
// the due index's predicate in full (migrations/0005_claim_only_indexes.sql).
const claimMessages = `WITH head AS (
	SELECT request_id, deadline FROM messages
	WHERE state = 'Queued' AND lease_until >= 0 AND GREATEST(next_attempt, lease_until) <= $1
	ORDER BY GREATEST(next_attempt, lease_until)
	LIMIT $3
	FOR UPDATE SKIP LOCKED
), expired AS (
	UPDATE messages m SET state = 'Expired', error = 'deadline passed', sealed = NULL, lease_until = 0, updated = $1
	FROM head h WHERE m.request_id = h.request_id AND h.deadline <= $1
	RETURNING 1
), claimed AS (
	UPDATE messages m SET attempts = m.attempts + 1, lease_until = $2
	FROM head h WHERE m.request_id = h.request_id AND h.deadline > $1
	RETURNING m.request_id, m.account_id, m.to_number, m.from_id, m.sealed, m.attempts, m.next_attempt,
		m.deadline, m.created
)
SELECT (SELECT count(*) FROM expired), c.*
FROM (VALUES (1)) AS one (x) LEFT JOIN claimed c ON true`

// maxExpiryRounds bounds how many times one claim goes back for more after
// finding expired messages at the head of the queue, so that a huge
// backlog of dead messages is expired over several claims rather than
// holding one past its timeout.
const maxExpiryRounds = 20

// ClaimMessages leases up to max due messages (Queued, NextAttempt and any
// earlier lease passed) until now+lease, counting an attempt on each. Due
// messages whose Deadline has passed (now is not before it) are not
// returned: they become DeliveryExpired and their text is wiped. A message
// is never returned to two claims while its lease holds, whichever instance
// claims.
func (s *Store) ClaimMessages(ctx context.Context, now time.Time, lease time.Duration, max int) ([]*verifyd.Message, error) {
	if max <= 0 {
		return nil, nil
	}
	if lease <= 0 {
		// A lease that has already run out would let one claim's messages
		// go to the next claim too.
		return nil, fmt.Errorf("postgres: claim lease %v is not positive", lease)
	}
	var out []*verifyd.Message
	err := s.do(ctx, func(ctx context.Context) error {
		for range maxExpiryRounds {
			expired, err := s.claimRound(ctx, now, lease, max-len(out), &out)
			// Nothing expired: the head just leased held every due message
			// there was room for.
			if err != nil || expired == 0 || len(out) == max {
				return err
			}
		}
		return nil
	})
	return out, err
}

// claimRound runs claimMessages once for up to n messages, adds those it
// leased to out, and returns how many it expired.
func (s *Store) claimRound(ctx context.Context, now time.Time, lease time.Duration, n int, out *[]*verifyd.Message) (expired int64, err error) {
	rows, _ := s.pool.Query(ctx, claimMessages, ms(now), ms(now.Add(lease)), n)
	_, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (struct{}, error) {
		var (
			id, to, from                   *string
			account, nextAttempt, deadline *int64
			created                        *int64
			attempts                       *int32
			sealed                         []byte
		)
		if err := row.Scan(&expired, &id, &account, &to, &from, &sealed, &attempts, &nextAttempt, &deadline, &created); err != nil {
			return struct{}{}, err
		}
		if id != nil {
			*out = append(*out, &verifyd.Message{RequestID: *id, AccountID: *account, To: *to, From: *from,
				Sealed: sealed, Attempts: int(*attempts), NextAttempt: fromMS(*nextAttempt),
				Deadline: fromMS(*deadline), Created: fromMS(*created)})
		}
		return struct{}{}, nil
	})
	return expired, err
}

// finishUnsent records the results of still-queued messages that were not
// handed over (to be retried, failed, expired), or handed over without a
// carrier id. A message withdrawn or expired meanwhile keeps its final
// state.
const finishUnsent = `UPDATE messages m SET
	state = r.state,
	error = r.error,
	next_attempt = CASE WHEN r.state = 'Queued' THEN r.next_attempt ELSE m.next_attempt END,
	sealed = CASE WHEN r.state = 'Queued' THEN m.sealed END,
	carrier_id = '',
	lease_until = 0,
	updated = r.at
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::int[]) AS r(request_id, state, error, next_attempt, at, attempt)
WHERE m.request_id = r.request_id AND m.state = 'Queued' AND (r.attempt = 0 OR m.attempts = r.attempt)`

// finishSubmitted records the parts of still-queued messages that were
// handed over, and the messages' states. A part whose definitive receipt
// came first (a part row without a request id) is final already: the
// receipt is taken, counted and deleted, since nothing needs the row any
// more (the same receipt again finds no Submitted part and changes
// nothing). A provisional one is adopted instead, its row kept for the
// receipt that may replace it. The other parts are written in the state
// given: Submitted, for their receipts to find, or Delivered, from a final
// sender. A receipt committed after this statement began is met on its
// part's row by the insert and adopted instead. The message takes at once
// the state its parts say (see aggregateParts), so that it is written once,
// and counts the parts still waiting for a definitive receipt, and those
// failed provisionally; a receipt that comes later waits for this commit
// on its part's row and then settles the message (settleMessages).
//
// Each message's row is found from its parts, so the plan is index lookups
// however few or many rows the planner expects.
const finishSubmitted = `WITH p AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[], $5::text[], $6::int[])
		AS p(carrier_id, request_id, part, at, state, attempt)
	WHERE EXISTS (SELECT 1 FROM messages m WHERE m.request_id = p.request_id AND m.state = 'Queued'
		AND (p.attempt = 0 OR m.attempts = p.attempt))
), taken AS (
	DELETE FROM message_parts o USING p
	WHERE o.carrier_id = p.carrier_id AND o.request_id IS NULL AND NOT o.provisional
	RETURNING p.carrier_id, p.request_id, p.part, o.state, o.error, o.updated, o.provisional
), added AS (
	INSERT INTO message_parts (carrier_id, request_id, part, state, error, updated)
	SELECT carrier_id, request_id, part, state, '', at FROM p
	WHERE carrier_id NOT IN (SELECT carrier_id FROM taken)
	ON CONFLICT (carrier_id) DO UPDATE SET
		request_id = excluded.request_id,
		part = excluded.part,
		state = CASE WHEN message_parts.request_id IS NULL THEN message_parts.state ELSE excluded.state END,
		error = CASE WHEN message_parts.request_id IS NULL THEN message_parts.error ELSE excluded.error END,
		updated = CASE WHEN message_parts.request_id IS NULL THEN message_parts.updated ELSE excluded.updated END,
		provisional = message_parts.request_id IS NULL AND message_parts.provisional
	RETURNING carrier_id, request_id, part, state, error, updated, provisional
), parts AS (
	SELECT * FROM taken UNION ALL SELECT * FROM added
), a AS (` + aggregateParts + `,
		(array_agg(carrier_id ORDER BY part))[1] AS first,
		count(*) FILTER (WHERE state = 'Submitted' OR provisional) AS waiting,
		min(updated) FILTER (WHERE state = 'Submitted') AS submitted
	FROM parts GROUP BY request_id
)
UPDATE messages m SET
	state = CASE WHEN a.fail_state IS NOT NULL THEN a.fail_state WHEN a.unsure > 0 THEN a.unsure_state
		WHEN a.waiting = 0 THEN 'Delivered' ELSE 'Submitted' END,
	error = COALESCE(a.fail_error, a.unsure_error, ''),
	sealed = NULL,
	carrier_id = a.first,
	lease_until = 0,
	parts_left = a.waiting,
	parts_unsure = CASE WHEN a.fail_state IS NOT NULL THEN 0 ELSE a.unsure END,
	delivered_at = COALESCE(a.delivered_at, 0),
	updated = CASE WHEN a.fail_state IS NOT NULL THEN a.fail_at WHEN a.unsure > 0 THEN a.unsure_at
		WHEN a.waiting = 0 THEN a.delivered_at ELSE a.submitted END
FROM a
WHERE m.request_id = a.request_id AND m.state = 'Queued'
	AND EXISTS (SELECT 1 FROM p WHERE p.request_id = m.request_id AND (p.attempt = 0 OR p.attempt = m.attempts))`

// aggregateParts is what final receipts say of their messages, by request
// id: how many parts they settle for good and when the last delivered one
// was; the first definitive failure (its state, error and time), which
// fails the message for good; and how many failed provisionally, and the
// first of those, which fails it until their parts' next receipts.
const aggregateParts = `SELECT request_id,
		count(*) FILTER (WHERE state <> 'Submitted' AND NOT provisional) AS settled,
		max(updated) FILTER (WHERE state = 'Delivered') AS delivered_at,
		(array_agg(state ORDER BY updated, part) FILTER (WHERE state NOT IN ('Submitted', 'Delivered') AND NOT provisional))[1] AS fail_state,
		(array_agg(error ORDER BY updated, part) FILTER (WHERE state NOT IN ('Submitted', 'Delivered') AND NOT provisional))[1] AS fail_error,
		min(updated) FILTER (WHERE state NOT IN ('Submitted', 'Delivered') AND NOT provisional) AS fail_at,
		count(*) FILTER (WHERE provisional) AS unsure,
		(array_agg(state ORDER BY updated, part) FILTER (WHERE provisional))[1] AS unsure_state,
		(array_agg(error ORDER BY updated, part) FILTER (WHERE provisional))[1] AS unsure_error,
		min(updated) FILTER (WHERE provisional) AS unsure_at`

// settleMessages records final receipts ($1 carrier ids in order, with
// their states, errors, times and whether each is provisional) and settles
// their messages. A part leaves Submitted once, and a provisional failure
// once more, for a definitive receipt: any other receipt for a part already
// final changes nothing. A receipt whose part is not known yet is kept as a
// part without a request id (FinishMessages adopts it). A known part's
// message counts it off once definitive, and is Delivered once no part is
// left, or fails with the first definitive failure. A provisional failure
// fails a Submitted message too, until no part is provisional any more: the
// message is then Delivered, or Submitted again while parts wait. Two
// receipts for parts of one message take turns on the message's row, and
// the second counts from what the first wrote (an UPDATE that waited for a
// row lock re-reads the row), so none is lost.
//
// Whether a part was provisional before (unsure_out) shows only to the
// upsert that meets its latest row: a part made, and failed provisionally,
// after the statement began is not in its snapshot, so a read ahead of the
// write would miss it. The first upsert (settled) takes a receipt only
// where the part it meets is still Submitted, keeps the receipts of ids not
// known yet, and locks every other part, in the order given, so that none
// can change until the commit; the second (replaced) then takes, on those
// locked parts only, the definitive receipts of parts failed provisionally,
// so that each part it returns with a request id was. A receipt for a
// Submitted part, the usual case, is written once.
//
// The update also takes a row that was still Queued when the statement
// began: a part known to be its message's was adopted by a finish that
// made the message Submitted (or final) in the transaction this statement
// may have waited for, so the row it updates, the latest, is never Queued;
// a final one is left alone.
const settleMessages = `WITH r AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bool[]) WITH ORDINALITY
		AS u(cid, st, err, at, prov, i)
), settled AS (
	INSERT INTO message_parts (carrier_id, request_id, part, state, error, updated, provisional)
	SELECT cid, NULL, 0, st, err, at, prov FROM r
	ORDER BY i
	ON CONFLICT (carrier_id) DO UPDATE SET state = excluded.state, error = excluded.error, updated = excluded.updated,
		provisional = excluded.provisional
	WHERE message_parts.state = 'Submitted'
	RETURNING carrier_id, request_id, part, state, error, updated, provisional
), replaced AS (
	INSERT INTO message_parts (carrier_id, request_id, part, state, error, updated, provisional)
	SELECT cid, NULL, 0, st, err, at, prov FROM r
	WHERE NOT prov AND cid NOT IN (SELECT carrier_id FROM settled)
	ORDER BY i
	ON CONFLICT (carrier_id) DO UPDATE SET state = excluded.state, error = excluded.error, updated = excluded.updated,
		provisional = excluded.provisional
	WHERE message_parts.provisional
	RETURNING carrier_id, request_id, part, state, error, updated, provisional
), parts AS (
	SELECT *, false AS was_unsure FROM settled WHERE request_id IS NOT NULL
	UNION ALL
	SELECT *, true FROM replaced WHERE request_id IS NOT NULL
), a AS (` + aggregateParts + `,
		count(*) FILTER (WHERE was_unsure) AS unsure_out,
		max(updated) FILTER (WHERE was_unsure) AS replaced_at
	FROM parts GROUP BY request_id
)
UPDATE messages m SET
	parts_left = m.parts_left - a.settled,
	parts_unsure = CASE WHEN a.fail_state IS NOT NULL THEN 0 ELSE m.parts_unsure + a.unsure - a.unsure_out END,
	delivered_at = GREATEST(m.delivered_at, COALESCE(a.delivered_at, 0)),
	state = CASE WHEN a.fail_state IS NOT NULL THEN a.fail_state
		WHEN m.parts_left <= a.settled THEN 'Delivered'
		WHEN m.parts_unsure > 0 AND m.parts_unsure + a.unsure = a.unsure_out THEN 'Submitted'
		WHEN m.parts_unsure = 0 AND a.unsure > 0 THEN a.unsure_state
		ELSE m.state END,
	error = CASE WHEN a.fail_state IS NOT NULL THEN a.fail_error
		WHEN m.parts_left <= a.settled THEN ''
		WHEN m.parts_unsure > 0 AND m.parts_unsure + a.unsure = a.unsure_out THEN ''
		WHEN m.parts_unsure = 0 AND a.unsure > 0 THEN a.unsure_error
		ELSE m.error END,
	updated = CASE WHEN a.fail_state IS NOT NULL THEN a.fail_at
		WHEN m.parts_left <= a.settled THEN GREATEST(m.delivered_at, a.delivered_at)
		WHEN m.parts_unsure > 0 AND m.parts_unsure + a.unsure = a.unsure_out THEN a.replaced_at
		WHEN m.parts_unsure = 0 AND a.unsure > 0 THEN a.unsure_at
		ELSE m.updated END
FROM a
WHERE m.request_id = a.request_id AND (m.state IN ('Queued', 'Submitted') OR m.parts_unsure > 0)`

// FinishMessages records the outcome of claimed messages in one
// transaction and one round trip, releases their leases, and matches any
// receipt that arrived before its carrier id was known. If a message or
// part row stays locked past lockedWait (see finishAroundLocked), the
// results that need no such row are recorded, and EUNAVAILABLE is
// returned for the others: recording the batch again is safe, since a
// result recorded changes nothing the second time.
func (s *Store) FinishMessages(ctx context.Context, results []verifyd.MessageResult) error {
	for _, r := range results {
		switch r.State {
		case verifyd.DeliveryQueued, verifyd.DeliverySubmitted, verifyd.DeliveryDelivered, verifyd.DeliveryFailed,
			verifyd.DeliveryExpired:
		default:
			return fmt.Errorf("postgres: a delivery worker cannot finish a message as %q", r.State)
		}
	}
	if len(results) == 0 {
		return nil
	}
	return s.do(ctx, func(ctx context.Context) error {
		return s.finish(ctx, results)
	})
}

// finish records results in one transaction, again if the server broke a
// deadlock by aborting it. It waits for a row lock at most lockedWait:
// another instance holds a claimed message's row for a round trip at most
// (a cancel withdrawing it), and one held longer is someone else's (an
// administrator's transaction, a hung instance). Waiting to the Store's
// timeout failed the whole batch, every try, so the worker's other
// messages were never recorded and went out again once their leases ran
// out.
func (s *Store) finish(ctx context.Context, results []verifyd.MessageResult) error {
	err := retryAborted(ctx, func() error { return s.pool.SendBatch(ctx, s.finishBatch(results)).Close() })
	if lockTimeout(err) && len(results) > 1 {
		return s.finishAroundLocked(ctx, results, err)
	}
	return err
}

// finishBatch is the pipeline that records results: the unsent ones in one
// statement (finishUnsent), the handed over ones in another
// (finishSubmitted), or more if a carrier id comes twice.
func (s *Store) finishBatch(results []verifyd.MessageResult) *pgx.Batch {
	type part struct {
		carrierID, requestID, state string
		no, attempt                 int32
		at                          int64
	}
	var (
		ids, states, errs []string
		nexts, ats        []int64
		attempts          []int32
		parts             []part
		groups            [][]part
		seen              = map[string]bool{}
	)
	for _, r := range results {
		if (r.State == verifyd.DeliverySubmitted || r.State == verifyd.DeliveryDelivered) && len(r.CarrierIDs) > 0 {
			for _, id := range r.CarrierIDs {
				if seen[id] {
					// An earlier message of the batch has this id: the
					// later one owns it, written by a statement of its own.
					groups, parts, seen = append(groups, parts), nil, map[string]bool{}
					break
				}
			}
			for i, id := range r.CarrierIDs {
				// One row per carrier id: an id twice in a batch would
				// make the upsert touch its row twice, which it refuses.
				// None of this message's ids is in seen yet (see above),
				// so one there came from an earlier part of it.
				if !seen[id] {
					seen[id] = true
					parts = append(parts, part{id, r.RequestID, string(r.State), int32(i), int32(r.Attempt), ms(r.At)})
				}
			}
			continue
		}
		ids, states, errs = append(ids, r.RequestID), append(states, string(r.State)), append(errs, r.Error)
		nexts, ats = append(nexts, ms(r.NextAttempt)), append(ats, ms(r.At))
		attempts = append(attempts, int32(r.Attempt))
	}
	groups = append(groups, parts)
	type args struct {
		ids, reqs, states []string
		nos, attempts     []int32
		ats               []int64
	}
	var partArgs []args
	for _, parts := range groups {
		if len(parts) == 0 {
			continue
		}
		// Parts are written in carrier id order, as receipts write them, and
		// their messages are then updated in request id order, as receipts
		// update them: two transactions never wait on each other in a cycle.
		slices.SortFunc(parts, func(a, b part) int { return strings.Compare(a.carrierID, b.carrierID) })
		var a args
		for _, p := range parts {
			a.ids, a.reqs, a.states = append(a.ids, p.carrierID), append(a.reqs, p.requestID), append(a.states, p.state)
			a.nos, a.attempts, a.ats = append(a.nos, p.no), append(a.attempts, p.attempt), append(a.ats, p.at)
		}
		partArgs = append(partArgs, a)
	}
	b := &pgx.Batch{}
	s.queueBoundLockWait(b)
	if len(ids) > 0 {
		b.Queue(finishUnsent, ids, states, errs, nexts, ats, attempts)
	}
	for _, a := range partArgs {
		b.Queue(finishSubmitted, a.ids, a.reqs, a.nos, a.ats, a.states, a.attempts)
	}
	return b
}

// lockedFinishRows are the request ids of $1 whose message row, and the
// carrier ids of $2 whose part row, another transaction holds locked. The
// probe takes the locks a finish's writes take: FOR NO KEY UPDATE on a
// message, so that a part's insert checking its message (FOR KEY SHARE)
// does not count as holding it, and FOR UPDATE on a part, which the finish
// may delete.
const lockedFinishRows = `WITH free_messages AS (
	SELECT request_id FROM messages WHERE request_id = ANY($1) FOR NO KEY UPDATE SKIP LOCKED
), free_parts AS (
	SELECT carrier_id FROM message_parts WHERE carrier_id = ANY($2) FOR UPDATE SKIP LOCKED
)
SELECT request_id, '' FROM messages WHERE request_id = ANY($1) AND request_id NOT IN (SELECT request_id FROM free_messages)
UNION ALL
SELECT '', carrier_id FROM message_parts WHERE carrier_id = ANY($2) AND carrier_id NOT IN (SELECT carrier_id FROM free_parts)`

// finishAroundLocked is a batch that waited for a row lock past
// lockedWait (cause): its results needing a message or part row still
// locked are left for the caller to record again, and the others are
// recorded on their own, so that a message held by someone else does not
// keep the rest of its batch unrecorded (and sent again once their leases
// run out). A result sharing a carrier id with one left is left too, so
// that the later of the two still owns the id.
func (s *Store) finishAroundLocked(ctx context.Context, results []verifyd.MessageResult, cause error) error {
	var reqs, cids []string
	for _, r := range results {
		reqs, cids = append(reqs, r.RequestID), append(cids, r.CarrierIDs...)
	}
	lockedReq, lockedCID := map[string]bool{}, map[string]bool{}
	rows, _ := s.pool.Query(ctx, lockedFinishRows, reqs, cids)
	var req, cid string
	if _, err := pgx.ForEachRow(rows, []any{&req, &cid}, func() error {
		lockedReq[req], lockedCID[cid] = true, true
		return nil
	}); err != nil {
		return cause
	}
	delete(lockedReq, "")
	delete(lockedCID, "")
	if len(lockedReq) == 0 && len(lockedCID) == 0 {
		return cause
	}
	left := make([]bool, len(results))
	for more := true; more; {
		more = false
		for i, r := range results {
			if left[i] || !lockedReq[r.RequestID] && !slices.ContainsFunc(r.CarrierIDs, func(id string) bool { return lockedCID[id] }) {
				continue
			}
			left[i], more = true, true
			for _, id := range r.CarrierIDs {
				lockedCID[id] = true
			}
		}
	}
	var rest []verifyd.MessageResult
	for i, r := range results {
		if !left[i] {
			rest = append(rest, r)
		}
	}
	if len(rest) == len(results) {
		return cause
	}
	if len(rest) > 0 {
		if err := s.finish(ctx, rest); err != nil {
			return err
		}
	}
	return s.unavailable(fmt.Errorf("%d of %d messages not recorded: %w", len(results)-len(rest), len(results), cause))
}

// Receipts are recorded in groups (see groups): a carrier, or the dev
// sender, reports each part on its own, many at once.
const (
	maxReceiptGroup   = 256
	receiptCommitters = 2
)

// newReceiptGroups groups receipts; a second receipt for one carrier id
// waits for the next group, so that the first final one counts.
func (s *Store) newReceiptGroups() *groups[verifyd.Receipt] {
	return &groups[verifyd.Receipt]{
		max:        maxReceiptGroup,
		committers: receiptCommitters,
		key:        func(r verifyd.Receipt) string { return r.CarrierID },
		keyLocks:   true,
		commit:     s.receiptTx,
	}
}

// RecordReceipt records a carrier's receipt against the message part with
// that carrier id. A receipt for an id not yet known is kept (a part row
// without a request id) and matched when FinishMessages records the id;
// the same receipt twice changes nothing, and so does an intermediate one
// (a part leaves Submitted once, and a provisional failure once more, for
// a definitive receipt). It returns only once the receipt is
// committed, in a transaction that other receipts waiting at once may
// share.
func (s *Store) RecordReceipt(ctx context.Context, r verifyd.Receipt) error {
	if r.State == verifyd.DeliveryQueued || r.State == verifyd.DeliverySubmitted {
		return nil
	}
	return s.receipts.do(s, ctx, r)
}

// receiptTx records a group of receipts in one statement (settleMessages),
// their parts written in carrier id order, so that two groups never wait on
// each other's parts in a cycle. Two groups settling several multi-part
// messages may still meet in opposite orders on the messages' rows: the
// server then aborts one, which groups.run runs again.
//
// The statement waits for a row lock at most lockedWait (set in the same
// pipeline, so for its implicit transaction only): another group holds a
// part or message row for a round trip or two, and one held longer is
// someone else's (an administrator's transaction, a hung instance). Past
// the bound, receiptsAroundLocked fails only the receipts that need a row
// still locked; waiting to the Store's timeout failed the whole group, and
// each next group that met the row waited again, so while it was held the
// instance's receipts stalled.
func (s *Store) receiptTx(ctx context.Context, group []*call[verifyd.Receipt]) ([]error, error) {
	rs := make([]verifyd.Receipt, len(group))
	for i, c := range group {
		rs[i] = c.arg
	}
	slices.SortFunc(rs, func(a, b verifyd.Receipt) int { return strings.Compare(a.CarrierID, b.CarrierID) })
	var (
		ids, states, errs = make([]string, len(rs)), make([]string, len(rs)), make([]string, len(rs))
		ats               = make([]int64, len(rs))
		provs             = make([]bool, len(rs))
	)
	for i, r := range rs {
		ids[i], states[i], errs[i], ats[i], provs[i] = r.CarrierID, string(r.State), r.Error, ms(r.At), r.Provisional
	}
	b := &pgx.Batch{}
	s.queueBoundLockWait(b)
	b.Queue(settleMessages, ids, states, errs, ats, provs)
	err := s.pool.SendBatch(ctx, b).Close()
	if lockTimeout(err) && len(group) > 1 {
		return s.receiptsAroundLocked(ctx, group, ids, err)
	}
	if err != nil {
		return nil, err
	}
	return make([]error, len(group)), nil
}

// lockedReceiptRows are the carrier ids of $1 whose part row, or whose
// part's message row, another transaction holds locked: the rows
// settleMessages would wait for. The probe takes the lock an update of
// those rows takes (FOR NO KEY UPDATE), so that a part's insert checking
// its message (FOR KEY SHARE) does not count as holding it.
const lockedReceiptRows = `WITH p AS (
	SELECT carrier_id, request_id FROM message_parts WHERE carrier_id = ANY($1)
), free_parts AS (
	SELECT carrier_id FROM message_parts WHERE carrier_id = ANY($1) FOR NO KEY UPDATE SKIP LOCKED
), free_messages AS (
	SELECT request_id FROM messages WHERE request_id IN (SELECT request_id FROM p) FOR NO KEY UPDATE SKIP LOCKED
)
SELECT carrier_id FROM p
WHERE carrier_id NOT IN (SELECT carrier_id FROM free_parts)
	OR request_id IS NOT NULL AND request_id NOT IN (SELECT request_id FROM free_messages)`

// receiptsAroundLocked is a group whose statement waited for a row lock
// past lockedWait (cause): its receipts needing a part or message row still
// locked answer EUNAVAILABLE (the carrier sends them again), and the others
// are recorded as a group of their own. If no row is found locked (the
// lock went meanwhile, or the wait was for a part another transaction is
// inserting), the whole group fails, as it would have.
func (s *Store) receiptsAroundLocked(ctx context.Context, group []*call[verifyd.Receipt], ids []string, cause error) ([]error, error) {
	rows, _ := s.pool.Query(ctx, lockedReceiptRows, ids)
	locked, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(locked) == 0 {
		return nil, cause
	}
	return aroundLocked(ctx, s, group, cause, func(r verifyd.Receipt) bool {
		return slices.Contains(locked, r.CarrierID)
	}, s.receiptTx)
}
