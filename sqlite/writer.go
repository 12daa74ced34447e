package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
)

// maxGroup caps how many writes share one commit, so that one slow group
// cannot hold every caller for long.
const maxGroup = 256

// The life of an op: waiting in the queue, then either taken by the writer
// or abandoned by its caller (context done, store closed), never both.
const (
	opWaiting int32 = iota
	opTaken
	opAbandoned
)

// op is one write waiting for the writer.
type op struct {
	fn    func(*tx) error
	state atomic.Int32

	// Set by the writer before done is closed.
	err      error
	panicked any
	done     chan struct{}
}

// writer owns the one read-write connection and runs every write.
type writer struct {
	db    *sql.DB
	conn  *sql.Conn
	stmts map[string]*sql.Stmt // prepared on conn; used by the writer goroutine only
	max   int

	ops    chan *op
	quit   chan struct{}
	exited chan struct{}

	groups, writes atomic.Int64 // transactions run, and writes in them

	ckpt      *checkpointer
	sinceCkpt int // writes committed since the last checkpoint was asked for
}

func newWriter(db *sql.DB, conn *sql.Conn, ckpt *checkpointer, max int) *writer {
	w := &writer{
		db:     db,
		conn:   conn,
		ckpt:   ckpt,
		stmts:  map[string]*sql.Stmt{},
		max:    max,
		ops:    make(chan *op, max),
		quit:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go w.run()
	return w
}

// tx is what a write sees: the writer's transaction, inside its savepoint.
type tx struct {
	w *writer
}

// stmt returns the statement for query, prepared once on the writer's
// connection: most writes are a handful of statements run thousands of
// times a second.
func (t *tx) stmt(query string) (*sql.Stmt, error) {
	if s, ok := t.w.stmts[query]; ok {
		return s, nil
	}
	s, err := t.w.conn.PrepareContext(context.Background(), query)
	if err != nil {
		return nil, err
	}
	t.w.stmts[query] = s
	return s, nil
}

// exec runs a statement that returns no rows.
func (t *tx) exec(query string, args ...any) (sql.Result, error) {
	s, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return s.Exec(args...)
}

// execOnce runs a statement not worth preparing, such as a migration.
func (t *tx) execOnce(query string, args ...any) (sql.Result, error) {
	return t.w.conn.ExecContext(context.Background(), query, args...)
}

// query runs a statement that returns rows.
func (t *tx) query(query string, args ...any) (*sql.Rows, error) {
	s, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return s.Query(args...)
}

// queryRow runs a statement that returns at most one row.
func (t *tx) queryRow(query string, args ...any) rowScanner {
	s, err := t.stmt(query)
	if err != nil {
		return errRow{err}
	}
	return s.QueryRow(args...)
}

// rowScanner is a *sql.Row, or the error that kept the query from running.
type rowScanner interface{ Scan(dest ...any) error }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// write runs fn in the writer's next group commit and returns once that
// commit is durable (or failed). fn runs on the writer goroutine: it must be
// quick and must not call the store, or every write waits on it.
//
// When ctx ends before the writer takes fn, fn never runs and ctx's error
// is returned; once taken, the outcome is waited for, so the caller never
// hears "cancelled" about a write that was in fact committed.
func (w *writer) write(ctx context.Context, fn func(*tx) error) error {
	o := &op{fn: fn, done: make(chan struct{})}
	select {
	case w.ops <- o:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.quit:
		return errClosed
	}
	select {
	case <-o.done:
	case <-ctx.Done():
		if o.state.CompareAndSwap(opWaiting, opAbandoned) {
			return ctx.Err()
		}
		<-o.done
	case <-w.exited:
		if o.state.CompareAndSwap(opWaiting, opAbandoned) {
			return errClosed
		}
		<-o.done
	}
	if o.panicked != nil {
		panic(o.panicked)
	}
	return o.err
}

// run is the writer goroutine: take the first waiting write, then every
// other one already waiting, and commit them together.
func (w *writer) run() {
	defer close(w.exited)
	group := make([]*op, 0, w.max)
	for {
		select {
		case o := <-w.ops:
			group = append(group[:0], o)
		case <-w.quit:
			// Finish what was queued before Close; later callers see
			// exited and give up.
			for {
				group = w.gather(group[:0])
				if len(group) == 0 {
					return
				}
				w.commit(group)
			}
		}
		w.commit(w.gather(group))
	}
}

// gather appends the writes already waiting, up to the cap, without
// waiting for more: the group is whatever piled up during the last commit.
func (w *writer) gather(group []*op) []*op {
	for len(group) < w.max {
		select {
		case o := <-w.ops:
			group = append(group, o)
		default:
			return group
		}
	}
	return group
}

// commit runs a group in one transaction, each write in its own savepoint
// so that a failing one rolls back alone, commits once, and only then
// releases the callers.
func (w *writer) commit(group []*op) {
	taken := group[:0]
	for _, o := range group {
		if o.state.CompareAndSwap(opWaiting, opTaken) {
			taken = append(taken, o)
		}
	}
	if len(taken) == 0 {
		return
	}
	w.groups.Add(1)
	w.writes.Add(int64(len(taken)))
	defer func() {
		for _, o := range taken {
			close(o.done)
		}
	}()

	// Statements run without a context: one caller's cancellation must
	// not abort the transaction of the others.
	t := &tx{w: w}
	if _, err := t.exec("BEGIN IMMEDIATE"); err != nil {
		w.fail(taken, fmt.Errorf("sqlite: begin: %w", err))
		return
	}
	for _, o := range taken {
		if err := w.runOne(t, o); err != nil {
			// The transaction is in an unknown state: nothing of it may
			// be committed, and every caller hears so.
			_, _ = t.exec("ROLLBACK")
			w.fail(taken, err)
			return
		}
	}
	if _, err := t.exec("COMMIT"); err != nil {
		_, _ = t.exec("ROLLBACK")
		w.fail(taken, fmt.Errorf("sqlite: commit: %w", err))
		return
	}
	if w.sinceCkpt += len(taken); w.sinceCkpt >= checkpointEvery {
		w.sinceCkpt = 0
		w.ckpt.due()
	}
}

// fail gives err to every write of a group that is lost as a whole, except
// those that failed (or panicked) on their own: nothing of theirs was
// written either way.
func (w *writer) fail(group []*op, err error) {
	for _, o := range group {
		if o.err == nil && o.panicked == nil {
			o.err = err
		}
	}
}

// runOne runs one write inside its savepoint. Its own failure goes to its
// caller only; the error returned is a failure of the savepoint machinery,
// which loses the whole group.
func (w *writer) runOne(t *tx, o *op) error {
	if _, err := t.exec("SAVEPOINT op"); err != nil {
		return fmt.Errorf("sqlite: savepoint: %w", err)
	}
	o.panicked, o.err = call(t, o.fn)
	if o.err != nil || o.panicked != nil {
		if _, err := t.exec("ROLLBACK TO op"); err != nil {
			return fmt.Errorf("sqlite: rollback to savepoint: %w", err)
		}
	}
	if _, err := t.exec("RELEASE op"); err != nil {
		return fmt.Errorf("sqlite: release savepoint: %w", err)
	}
	return nil
}

// call runs fn, turning a panic into a value the caller re-panics with, so
// that a bug in one write cannot kill the writer every other write needs.
func call(t *tx, fn func(*tx) error) (panicked any, err error) {
	defer func() {
		if p := recover(); p != nil {
			panicked = fmt.Sprintf("%v [recovered in the sqlite writer]\n%s", p, debug.Stack())
		}
	}()
	return nil, fn(t)
}

// stopped reports whether close has begun.
func (w *writer) stopped() bool {
	select {
	case <-w.quit:
		return true
	default:
		return false
	}
}

// close lets the writer finish the queued writes, then stops the
// checkpointer and closes the connections.
func (w *writer) close() error {
	close(w.quit)
	<-w.exited
	errs := []error{w.ckpt.close()}
	for _, s := range w.stmts {
		errs = append(errs, s.Close())
	}
	errs = append(errs, w.conn.Close(), w.db.Close())
	return errors.Join(errs...)
}
