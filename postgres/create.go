package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"verifyd"
)

// Creates are committed in groups: whatever creates are waiting when a
// committer is free go into one transaction. A create with limits must hold
// its buckets' row locks until its commit, and every create of an account
// to one country shares the country bucket, so one create per transaction
// would cap an account at one commit's duration per create (about 1,000 a
// second on these machines). In a group, the hot bucket is locked once for
// all of them, and the rows go in as one multi-row insert.
const (
	// maxCreateGroup bounds a group, and so the latency one large group
	// adds to the creates in it.
	maxCreateGroup = 128
	// createCommitters is how many groups may be in flight at once: while
	// one commits, the next fills. More make smaller groups that contend
	// for the same hot buckets; on two cores two did best for creates with
	// and without limits.
	createCommitters = 2
)

// createArgs is one CreateVerification.
type createArgs struct {
	v      *verifyd.Verification
	m      *verifyd.Message
	limits []verifyd.Limit
	answer *verifyd.IdempotentRequest // recorded with the create, if set
}

// newCreateGroups groups creates; a request id twice in a group waits for
// the next, so that it meets the first as a conflict. A caller that gives
// up still waits for a group that has taken its create: the group may
// commit it, and an error answered for a committed create would let an
// idempotent retry send a second code.
func (s *Store) newCreateGroups() *groups[createArgs] {
	return &groups[createArgs]{
		max:        maxCreateGroup,
		committers: createCommitters,
		key:        func(a createArgs) string { return a.v.ID },
		commit:     s.createTx,
		waitAll:    true,
	}
}

// CreateVerification commits v, its message m (nil when nothing is sent)
// and a charge to every limit in one transaction. When any limit is
// exhausted nothing is written and the error is the Limit's Throttled error
// for the longest wait. v.Created is "now" for the limits.
//
// The transaction may hold other creates too (up to 128 that were waiting
// for a commit at once), each decided as if the group's creates had run one
// after another, and none returns before the group's commit. Limit buckets
// are created if new and locked in key order (so two groups sharing buckets
// never wait on each other in a cycle), verifyd.Limit.Take decides on the
// locked values, and the new values are written in the same transaction.
// Every instance charges the same rows, so the limits hold across
// instances.
func (s *Store) CreateVerification(ctx context.Context, v *verifyd.Verification, m *verifyd.Message, limits []verifyd.Limit) error {
	return s.creates.do(s, ctx, createArgs{v: v, m: m, limits: limits})
}

// CreateVerificationWithAnswer is CreateVerification that also records
// answer, Done, on its reserved key in the same transaction (see
// verifyd.VerificationStore).
func (s *Store) CreateVerificationWithAnswer(ctx context.Context, v *verifyd.Verification, m *verifyd.Message, limits []verifyd.Limit, answer *verifyd.IdempotentRequest) error {
	return s.creates.do(s, ctx, createArgs{v: v, m: m, limits: limits, answer: answer})
}

// recordAnswers marks Done, with their answers, the reserved keys of the
// group's creates that are in the table: found by id and MAC, so never a
// row another create with the same id left. It runs last in the group's
// transaction, after the refused creates are removed.
const recordAnswers = `UPDATE idempotent_requests i SET done = true, status = u.status, response = u.response
FROM unnest($1::bigint[], $2::text[], $3::int[], $4::bytea[], $5::text[], $6::bytea[], $7::bytea[])
	AS u(account_id, key, status, response, id, mac, token)
WHERE i.account_id = u.account_id AND i.key = u.key AND NOT i.done AND i.token = u.token
	AND EXISTS (SELECT 1 FROM verifications v WHERE v.id = u.id AND v.code_mac = u.mac)`

// queueRecordAnswers adds recordAnswers for the group's creates that carry
// an answer, if any do.
func queueRecordAnswers(b *pgx.Batch, group []*call[createArgs]) {
	var (
		accounts                []int64
		keys, ids               []string
		statuses                []int32
		responses, macs, tokens [][]byte
	)
	for _, c := range group {
		if a := c.arg.answer; a != nil {
			accounts, keys, statuses = append(accounts, a.AccountID), append(keys, a.Key), append(statuses, int32(a.Status))
			responses, ids, macs = append(responses, a.Response), append(ids, c.arg.v.ID), append(macs, c.arg.v.CodeMAC)
			tokens = append(tokens, a.Token)
		}
	}
	if len(keys) > 0 {
		b.Queue(recordAnswers, accounts, keys, statuses, responses, ids, macs, tokens)
	}
}

// insertCreates inserts the group's verifications, skipping ids already
// taken and creates whose Idempotency-Key ($24, $25: the key and the
// reservation's token, NULL for a create without one) no longer holds
// their reservation, and the messages of those it inserted; it returns
// their ids. The reservations it finds are locked until the commit, so a
// retry cannot take one over between this check and the recording of its
// answer (recordAnswers): a slow request whose key was taken over after
// the lease commits nothing, and the retry sends the only code.
const insertCreates = `WITH held AS MATERIALIZED (
	SELECT i.account_id, i.key, i.token FROM idempotent_requests i
	JOIN unnest($2::bigint[], $24::text[], $25::bytea[]) AS r(account_id, key, token)
		ON i.account_id = r.account_id AND i.key = r.key AND i.token = r.token
	WHERE NOT i.done
	FOR UPDATE OF i
), v AS (
	INSERT INTO verifications (id, account_id, phone_number, country, number_status, state, code_mac, attempts,
		max_attempts, created, valid_until, verified, updated, run_cooldown)
	SELECT u.id, u.account_id, u.phone_number, u.country, u.number_status, u.state, u.code_mac, u.attempts,
		u.max_attempts, u.created, u.valid_until, u.verified, u.updated, u.run_cooldown
	FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[],
		$8::int[], $9::int[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $23::bigint[],
		$24::text[], $25::bytea[]) AS u(id, account_id, phone_number, country, number_status, state, code_mac,
		attempts, max_attempts, created, valid_until, verified, updated, run_cooldown, key, token)
	WHERE u.key IS NULL OR (u.account_id, u.key, u.token) IN (SELECT account_id, key, token FROM held)
	ON CONFLICT (id) DO NOTHING
	RETURNING id
), m AS (
	INSERT INTO messages (request_id, account_id, to_number, from_id, sealed, state, attempts, next_attempt,
		deadline, lease_until, carrier_id, error, created, updated)
	SELECT u.request_id, u.account_id, u.to_number, u.from_id, u.sealed, 'Queued', u.attempts, u.next_attempt,
		u.deadline, 0, '', '', u.created, u.created
	FROM unnest($14::text[], $15::bigint[], $16::text[], $17::text[], $18::bytea[], $19::int[], $20::bigint[],
		$21::bigint[], $22::bigint[]) AS u(request_id, account_id, to_number, from_id, sealed, attempts,
		next_attempt, deadline, created)
	WHERE u.request_id IN (SELECT id FROM v)
)
SELECT id FROM v`

// queueInsertCreates adds insertCreates for group to b; inserted receives
// the ids it inserted.
func queueInsertCreates(b *pgx.Batch, group []*call[createArgs], inserted map[string]bool) {
	n := len(group)
	var (
		ids, numbers, countries, numberStatuses, states = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		accounts                                        = make([]int64, n)
		macs                                            = make([][]byte, n)
		attempts, maxAttempts                           = make([]int32, n), make([]int32, n)
		created, validUntil, updated                    = make([]int64, n), make([]int64, n), make([]int64, n)
		runCooldowns                                    = make([]int64, n)
		verified                                        = make([]*int64, n)
		keys                                            = make([]*string, n) // NULL: no Idempotency-Key
		tokens                                          = make([][]byte, n)

		mIDs, mTos, mFroms                 []string
		mAccounts, mNext, mDeadline, mMade []int64
		mSealed                            [][]byte
		mAttempts                          []int32
	)
	for i, r := range group {
		v := r.arg.v
		ids[i], accounts[i], numbers[i], countries[i] = v.ID, v.AccountID, v.PhoneNumber, v.Country
		numberStatuses[i], states[i], macs[i] = string(v.NumberStatus), string(v.State), v.CodeMAC
		attempts[i], maxAttempts[i] = int32(v.Attempts), int32(v.MaxAttempts)
		created[i], validUntil[i], verified[i], updated[i] = ms(v.Created), ms(v.ValidUntil), nullMS(v.Verified), ms(v.Updated)
		runCooldowns[i] = verifyd.RunCooldown(r.arg.limits).Milliseconds()
		if a := r.arg.answer; a != nil {
			keys[i], tokens[i] = &a.Key, a.Token
		}
		if m := r.arg.m; m != nil {
			mIDs, mAccounts, mTos, mFroms = append(mIDs, m.RequestID), append(mAccounts, m.AccountID), append(mTos, m.To), append(mFroms, m.From)
			mSealed, mAttempts = append(mSealed, m.Sealed), append(mAttempts, int32(m.Attempts))
			mNext, mDeadline, mMade = append(mNext, ms(m.NextAttempt)), append(mDeadline, ms(m.Deadline)), append(mMade, ms(m.Created))
		}
	}
	b.Queue(insertCreates, ids, accounts, numbers, countries, numberStatuses, states, macs, attempts, maxAttempts,
		created, validUntil, verified, updated,
		mIDs, mAccounts, mTos, mFroms, mSealed, mAttempts, mNext, mDeadline, mMade, runCooldowns, keys, tokens).
		Query(func(rows pgx.Rows) error {
			var id string
			_, err := pgx.ForEachRow(rows, []any{&id}, func() error {
				inserted[id] = true
				return nil
			})
			return err
		})
}

// createTx is the group's transaction: one round trip without limits; with
// limits, the inserts, the bucket locks and the reads of runs of wrong codes
// and blocks in the first, the decisions in Go, and the charges (and the
// removal of refused creates) with the commit in the second. Inserting
// before locking keeps the buckets, which other groups wait for, locked for
// as short a time as can be. Runs and blocks are read, not locked: a wrong
// code or a block committed while the group decides counts from the next
// create on.
func (s *Store) createTx(ctx context.Context, group []*call[createArgs]) ([]error, error) {
	inserted := make(map[string]bool, len(group))
	var (
		keys                 []string
		runAccounts          []int64
		runNumbers, blockKey []string
	)
	for _, r := range group {
		for _, l := range r.arg.limits {
			switch {
			case l.Kind == verifyd.LimitFailures:
				runAccounts, runNumbers = append(runAccounts, r.arg.v.AccountID), append(runNumbers, r.arg.v.PhoneNumber)
			case l.Kind == verifyd.LimitBlocked:
				blockKey = append(blockKey, l.Key)
			case !l.Rate.Off():
				keys = append(keys, l.Key)
			}
		}
	}
	// Byte order here and COLLATE "C" below are the same order.
	slices.Sort(keys)
	keys = slices.Compact(keys)
	guarded := len(runAccounts) > 0 || len(blockKey) > 0

	errs := make([]error, len(group))
	conflicts := func() {
		for i, r := range group {
			switch {
			case inserted[r.arg.v.ID]:
			case r.arg.answer != nil:
				// A random id is never taken: its key was, by a retry
				// after the lease (see insertCreates).
				errs[i] = verifyd.ErrIdempotencyKeyRunning
			default:
				errs[i] = verifyd.Errorf(verifyd.ECONFLICT, "a verification with this id already exists")
			}
		}
	}
	if len(keys) == 0 && !guarded {
		// The transaction's id first, for a lost answer (see xact).
		var x xact
		b := &pgx.Batch{}
		x.queue(b)
		queueInsertCreates(b, group, inserted)
		queueRecordAnswers(b, group)
		if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
			if !x.committedDespite(ctx, s, err) {
				return nil, err
			}
			// Committed, but its answer (which ids it inserted) may be cut
			// short: they are read again.
			clear(inserted)
			if err := s.readInserted(ctx, group, inserted); err != nil {
				return nil, err
			}
		}
		conflicts()
		return errs, nil
	}

	buckets := make(map[string]*bucket, len(keys))
	g := guards{runs: map[runKey]run{}, blocks: map[string]int64{}}
	first := &pgx.Batch{}
	first.Queue("BEGIN")
	s.queueBoundLockWait(first)
	queueInsertCreates(first, group, inserted)
	if guarded {
		g.queueReads(first, runAccounts, runNumbers, blockKey)
	}
	if len(keys) > 0 {
		queueLockBuckets(first, keys, buckets)
	}
	err := s.twoTrips(ctx, first, func() (*pgx.Batch, error) {
		conflicts()
		var refused []string
		for i, r := range group {
			if errs[i] != nil || len(r.arg.limits) == 0 {
				continue
			}
			if err := take(r.arg.v, r.arg.limits, buckets, &g, r.arg.v.Created); err != nil {
				errs[i] = err
				refused = append(refused, r.arg.v.ID)
			}
		}
		second := &pgx.Batch{}
		if len(refused) > 0 {
			// Its message goes with it (ON DELETE CASCADE).
			second.Queue("DELETE FROM verifications v USING unnest($1::text[]) AS u(id) WHERE v.id = u.id", refused)
		}
		g.queueForget(second)
		var (
			charged []string
			untils  []int64
			sends   [][]byte
		)
		for _, k := range keys {
			if b := buckets[k]; b != nil && b.charged {
				charged = append(charged, k)
				untils = append(untils, b.Until.UnixNano())
				sends = append(sends, b.Encode())
			}
		}
		if len(charged) > 0 {
			second.Queue(`UPDATE limit_buckets b SET tat = u.tat, sends = u.sends
				FROM unnest($1::text[], $2::bigint[], $3::bytea[]) AS u(key, tat, sends)
				WHERE b.key = u.key`, charged, untils, sends)
		}
		queueRecordAnswers(second, group)
		return second, nil
	})
	if lockTimeout(err) && len(group) > 1 {
		return s.createAroundLocked(ctx, group, keys, err)
	}
	if err != nil {
		return nil, err
	}
	return errs, nil
}

// lockedBuckets are those of $1 that another transaction holds locked.
const lockedBuckets = `WITH free AS (
	SELECT key FROM limit_buckets WHERE key = ANY($1) FOR UPDATE SKIP LOCKED
)
SELECT key FROM limit_buckets WHERE key = ANY($1) AND key NOT IN (SELECT key FROM free)`

// createAroundLocked is a group whose buckets stayed locked past lockedWait
// (cause): its creates charging a bucket still locked answer EUNAVAILABLE,
// and the others are committed as a group of their own. A bucket is shared
// by every create of an account to a country, so a bucket held by someone
// else (a stuck session; a hung instance, until the server ends its
// transaction) would otherwise fail every create grouped with that
// account's, whatever its account.
func (s *Store) createAroundLocked(ctx context.Context, group []*call[createArgs], keys []string, cause error) ([]error, error) {
	rows, _ := s.pool.Query(ctx, lockedBuckets, keys)
	locked, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(locked) == 0 {
		return nil, cause
	}
	return aroundLocked(ctx, s, group, cause, func(a createArgs) bool {
		return slices.ContainsFunc(a.limits, func(l verifyd.Limit) bool {
			return l.Kind == verifyd.LimitRate && !l.Rate.Off() && slices.Contains(locked, l.Key)
		})
	}, s.createTx)
}

// readInserted adds to inserted the ids of the group's creates that are
// stored with their own code MACs, on a connection other than the one
// that inserted them, within lockedWait.
func (s *Store) readInserted(ctx context.Context, group []*call[createArgs], inserted map[string]bool) error {
	ids, macs := make([]string, len(group)), make([][]byte, len(group))
	for i, c := range group {
		ids[i], macs[i] = c.arg.v.ID, c.arg.v.CodeMAC
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.lockedWait())
	defer cancel()
	rows, _ := s.pool.Query(ctx, `SELECT v.id FROM unnest($1::text[], $2::bytea[]) AS u(id, mac)
		JOIN verifications v ON v.id = u.id AND v.code_mac = u.mac`, ids, macs)
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, id := range found {
		inserted[id] = true
	}
	return err
}

// bucket is a limit bucket as a group of creates reads and charges it.
type bucket struct {
	verifyd.Bucket
	charged bool // by a create of the group: to be written back
}

// queueLockBuckets adds to first the statements that create the buckets of
// keys (sorted) that are new, lock them all in key order, and read them
// into buckets.
func queueLockBuckets(first *pgx.Batch, keys []string, buckets map[string]*bucket) {
	// New buckets go in in key order too: a row another transaction is
	// inserting is waited for like a locked one. An existing bucket is
	// locked by the insert itself (an update that changes nothing): with
	// DO NOTHING, the purge could delete it before the SELECT below, which
	// would then skip it, judge the create on no bucket at all, and lose
	// its charge. A row deleted meanwhile is inserted again instead.
	first.Queue(`INSERT INTO limit_buckets (key, tat)
		SELECT k, 0 FROM unnest($1::text[]) WITH ORDINALITY AS u(k, i) ORDER BY i
		ON CONFLICT (key) DO UPDATE SET tat = limit_buckets.tat WHERE false`, keys)
	first.Queue(`SELECT b.key, b.tat, b.sends FROM unnest($1::text[]) AS u(key) JOIN limit_buckets b ON b.key = u.key
		ORDER BY b.key COLLATE "C" FOR UPDATE OF b`, keys).
		Query(func(rows pgx.Rows) error {
			read, err := collectBuckets(rows, len(keys))
			for key, b := range read {
				buckets[key] = &bucket{Bucket: b}
			}
			return err
		})
}

// take charges the create of v's limits to buckets at now, or charges
// nothing and returns the Throttled error of the limit with the longest
// wait. A run of wrong codes it finds over is forgotten,
// in g (so the group's later creates see it gone) and by g's second-trip
// statement.
func take(v *verifyd.Verification, limits []verifyd.Limit, buckets map[string]*bucket, g *guards, now time.Time) error {
	charged := make(map[string]verifyd.Bucket, len(limits))
	var (
		worst *verifyd.Limit
		wait  time.Duration
		over  bool
	)
	for i, l := range limits {
		var w time.Duration
		switch l.Kind {
		case verifyd.LimitFailures:
			r := g.runs[runKey{v.AccountID, v.PhoneNumber}]
			var o bool
			w, o = l.FailuresWait(r.failures, fromMS(r.last), now)
			over = over || o
		case verifyd.LimitBlocked:
			if until, ok := g.blocks[l.Key]; ok {
				w = verifyd.BlockWait(fromMS(until), now)
			}
		}
		if l.Kind != verifyd.LimitRate || l.Rate.Off() {
			if w > 0 && (worst == nil || w > wait) {
				worst, wait = &limits[i], w
			}
			continue
		}
		b, ok := charged[l.Key]
		if !ok && buckets[l.Key] != nil {
			b = buckets[l.Key].Bucket
		}
		next, w, ok := l.Take(b, now)
		if !ok {
			if worst == nil || w > wait {
				worst, wait = &limits[i], w
			}
			continue
		}
		charged[l.Key] = next
	}
	if worst != nil {
		return worst.Throttled(wait)
	}
	for k, b := range charged {
		buckets[k] = &bucket{Bucket: b, charged: true}
	}
	if over {
		g.forget(v)
	}
	return nil
}
