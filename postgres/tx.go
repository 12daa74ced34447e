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
func (s *Store) twoTrips(ctx context.Context, first *pgx.Batch, next func() (*pgx.Batch, error)) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The pool closes, rather than reuses, a connection left in a
	// transaction, so an error path that fails to roll back leaks nothing.
	defer conn.Release()
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
		return err
	}
	return nil
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
	return min(s.timeout/4, time.Second)
}

// boundLockWait sets the transaction's lock_timeout to $1 milliseconds,
// unless the connection's own (from the DSN, say) is shorter.
const boundLockWait = `SELECT set_config('lock_timeout', CASE
	WHEN current_setting('lock_timeout') <> '0'
		AND current_setting('lock_timeout')::interval < $1::bigint * interval '1 millisecond'
	THEN current_setting('lock_timeout') ELSE $1::text END, true)`

// queueBoundLockWait adds boundLockWait to a batch that has begun a
// transaction.
func (s *Store) queueBoundLockWait(b *pgx.Batch) {
	b.Queue(boundLockWait, fmt.Sprint(s.lockedWait().Milliseconds()))
}
