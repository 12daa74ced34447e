package postgres

import (
	"context"
	"errors"
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
