package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// errRolledBack is a COMMIT the server answered with ROLLBACK.
var errRolledBack = errors.New("the transaction was rolled back")

// twoTrips runs a transaction that needs Go code in its middle in two round
// trips instead of four: first (which must begin with "BEGIN") is sent as
// one pipeline; then next decides, from what first read, the statements
// that finish the transaction, and COMMIT is sent in the same pipeline.
// next returns a nil batch to roll back; its error is returned as it is.
//
// A second trip whose answer is lost may have committed (see xact), so the
// transaction's id is read in the first trip, and a commit found behind a
// lost answer is success, since what next decided is what was committed.
// Reported as an error, a committed create would be sent again by its
// client, and the number would get two codes.
func (s *Store) twoTrips(ctx context.Context, first *pgx.Batch, next func() (*pgx.Batch, error)) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The pool closes, rather than reuses, a connection left in a
	// transaction, so an error path that fails to roll back leaks nothing.
	defer conn.Release()
	var x xact
	x.queue(first)
	if err := conn.SendBatch(ctx, first).Close(); err != nil {
		rollback(ctx, conn)
		return err
	}
	second, err := next()
	if err != nil || second == nil {
		rollback(ctx, conn)
		return err
	}
	second.Queue("COMMIT").Exec(func(tag pgconn.CommandTag) error {
		if tag.String() != "COMMIT" {
			return errRolledBack
		}
		return nil
	})
	if err := conn.SendBatch(ctx, second).Close(); err != nil {
		rollback(ctx, conn)
		if x.committedDespite(ctx, s, err) {
			return nil
		}
		return err
	}
	return nil
}

// xact is a transaction's id, read in the transaction itself, for when its
// answer is lost. An answer lost (the session ended, the connection
// dropped) may hide a commit: the server makes a COMMIT durable, then,
// reading the next message of the pipeline, acts on a termination that
// came meanwhile, before it answers. So after such a loss the
// transaction's status is asked on another connection.
type xact struct{ id string }

// queue adds the read of the id to b, which runs in the transaction and is
// answered before anything that may lose the answer: a first trip after
// BEGIN, or the head of an implicit transaction's one pipeline, whose
// answer may be cut short after it.
func (x *xact) queue(b *pgx.Batch) {
	b.Queue("SELECT pg_current_xact_id()::text").QueryRow(func(row pgx.Row) error { return row.Scan(&x.id) })
}

// queueBounded is queue for the head of an implicit transaction's one
// pipeline, which also bounds the transaction's lock waits as
// queueBoundLockWait does: in the same statement, so that the bound costs
// the pipeline no statement of its own.
func (x *xact) queueBounded(b *pgx.Batch, s *Store) {
	b.Queue("SELECT pg_current_xact_id()::text, "+lockWaitBound, fmt.Sprint(s.lockedWait().Milliseconds())).
		QueryRow(func(row pgx.Row) error { return row.Scan(&x.id, nil) })
}

// committedDespite reports whether the transaction committed though err
// ended the trip that commits it: err lost the answer (answerLost), and
// the server, asked on another connection, says it committed (committed).
func (x *xact) committedDespite(ctx context.Context, s *Store, err error) bool {
	return answerLost(err) && s.committed(ctx, x.id)
}

// answerLost reports an error after which a transaction's outcome is not
// known from the error itself: the connection failed, or the call gave up
// waiting. An error the server answered for a statement means it aborted
// the transaction.
func answerLost(err error) bool {
	var pgErr *pgconn.PgError
	return connectionLost(err) || !errors.As(err, &pgErr) && !errors.Is(err, errRolledBack)
}

// committed reports whether transaction xid is known to have committed,
// asked on another connection (pg_xact_status) until the server knows or
// lockedWait has passed: a session being ended may still be finishing its
// transaction, and the connection asking may meet what ended the first
// (a dead pooled connection, say). Any doubt left is false.
func (s *Store) committed(ctx context.Context, xid string) bool {
	if xid == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.lockedWait())
	defer cancel()
	for {
		var status *string
		err := s.pool.QueryRow(ctx, "SELECT pg_xact_status($1::xid8)", xid).Scan(&status)
		if err == nil && status != nil && *status != "in progress" {
			return *status == "committed"
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// rollback ends a transaction left open by an error. A connection that
// cannot even do that is closed, which ends the transaction on the server.
func rollback(ctx context.Context, conn *pgxpool.Conn) {
	pg := conn.Conn().PgConn()
	if pg.IsClosed() || pg.TxStatus() == 'I' {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
		conn.Conn().Close(ctx)
	}
}

// retryAborted runs fn, up to three times while the server aborts it to
// break a deadlock (or the connection was found dead before anything was
// sent) and ctx lasts: either way nothing of it was committed.
func retryAborted(ctx context.Context, fn func() error) error {
	var err error
	for range 3 {
		if err = fn(); err == nil || !(isDeadlock(err) || pgconn.SafeToRetry(err)) || ctx.Err() != nil {
			break
		}
	}
	return err
}

// isDeadlock reports a transaction the server chose to abort to break a
// lock cycle; running it again is safe.
func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// lockedWait bounds how long a transaction of grouped writes waits for a
// row lock: a quarter of the Store's timeout, at most a second. Another
// instance's group holds the rows it shares with this one (a verification,
// a hot limit bucket) for a round trip or two; a lock held longer is
// someone else's (a stuck session; a hung instance, until the server ends
// its transaction), and the calls that need that row answer 503 rather
// than hold up the rest of their group and the groups queued behind it.
func (s *Store) lockedWait() time.Duration {
	if s.lockWait > 0 {
		return s.lockWait // a test's, to hold a race open on a slow machine
	}
	return min(s.timeout/4, time.Second)
}

// boundLockWait sets the transaction's lock_timeout to $1 milliseconds,
// unless the connection's own (from the DSN, say) is shorter.
const boundLockWait = `SELECT ` + lockWaitBound

// lockWaitBound is boundLockWait's expression, for a statement that reads
// something else too.
const lockWaitBound = `set_config('lock_timeout', CASE
	WHEN current_setting('lock_timeout') <> '0'
		AND current_setting('lock_timeout')::interval < $1::bigint * interval '1 millisecond'
	THEN current_setting('lock_timeout') ELSE $1::text END, true)`

// queueBoundLockWait adds boundLockWait to a batch, which has begun a
// transaction or is one pipeline (the implicit transaction it then runs
// in ends with it).
func (s *Store) queueBoundLockWait(b *pgx.Batch) {
	b.Queue(boundLockWait, fmt.Sprint(s.lockedWait().Milliseconds()))
}
