package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"verifyd"
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

	// A write of a bulk kind also carries its argument, so that the writer
	// can run every waiting write of that kind in one go; fn still runs it
	// alone when the bulk run fails.
	bulk *bulk
	arg  any

	// Set by the writer before done is closed.
	err      error
	panicked any
	done     chan struct{}
}

// A bulk is a kind of write that costs far less run for many callers at
// once than one by one: a multi-row statement instead of a statement per
// row. The writer runs the waiting writes of a kind together, in one
// savepoint; if that fails (any one of them fails), it rolls the savepoint
// back and runs each alone, so that a failure still reaches only its own
// caller. Writes waiting together are concurrent, so running them
// together in any order is as good as running them one after the other.
type bulk struct {
	// run does the writes of ops (two or more, by op.arg) and gives each its
	// results; any error means none of them is done.
	run func(t *tx, ops []*op) error
}

// unit is what the writer runs in one savepoint: one write, or every
// waiting write of a bulk kind.
type unit struct {
	bulk *bulk
	ops  []*op
}

// writer owns the one read-write connection and runs every write.
type writer struct {
	db    *sql.DB
	conn  *sql.Conn
	stmts map[string]*sql.Stmt // prepared on conn; used by the writer goroutine only
	texts map[valuesKey]string // bulk statements cut to a chunk size (see values)
	max   int

	ops    chan *op
	quit   chan struct{}
	exited chan struct{}

	groups, writes atomic.Int64 // transactions run, and writes in them
	bulkRuns       atomic.Int64 // bulk units run, each for two or more writes
	busy, commits  atomic.Int64 // nanoseconds running groups, and of that in COMMIT

	// refusing is set while the database refuses whole groups (a full
	// disk, an I/O error, a lock held elsewhere past the busy timeout):
	// Ping reports it, so that a node that cannot write leaves its load
	// balancer until it can again. A lock's refusal (byLock) ends with the
	// next commit. Any other ends with a commit that changed a row: one
	// that changed nothing (a claim finding no message) writes nothing to
	// disk and proves nothing. refusedAt is the connection's
	// total_changes() when the refusal was seen (writer goroutine only).
	refusing, byLock atomic.Bool
	refusedAt        int64

	units []unit // reused by commit

	ckpt      *checkpointer
	sinceCkpt int // writes committed since the last checkpoint was asked for
}

func newWriter(db *sql.DB, conn *sql.Conn, ckpt *checkpointer, max int) *writer {
	w := &writer{
		db:     db,
		conn:   conn,
		ckpt:   ckpt,
		stmts:  map[string]*sql.Stmt{},
		texts:  map[valuesKey]string{},
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
	// open are the rows the current write opened: closed after it, so that
	// a write that panics (or forgets) cannot keep the writer's connection
	// busy, which would hang Close.
	open []*sql.Rows
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
	rows, err := s.Query(args...)
	if err == nil {
		t.open = append(t.open, rows)
	}
	return rows, err
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
	return w.send(ctx, &op{fn: fn, done: make(chan struct{})})
}

// writeBulk is write for a write of kind b with argument arg: when others
// of its kind wait with it, b.run does them all at once; fn does it alone.
func (w *writer) writeBulk(ctx context.Context, b *bulk, arg any, fn func(*tx) error) error {
	return w.send(ctx, &op{fn: fn, bulk: b, arg: arg, done: make(chan struct{})})
}

func (w *writer) send(ctx context.Context, o *op) error {
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
		// The callers just released are runnable on this goroutine's P;
		// letting them run first lets their next writes join the next
		// group rather than the one after it.
		runtime.Gosched()
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
	start := time.Now()
	defer func() {
		for _, o := range taken {
			close(o.done)
		}
		w.busy.Add(int64(time.Since(start)))
	}()

	// Statements run without a context: one caller's cancellation must
	// not abort the transaction of the others.
	t := &tx{w: w}
	if _, err := t.exec("BEGIN IMMEDIATE"); err != nil {
		w.fail(taken, fmt.Errorf("sqlite: begin: %w", err))
		return
	}
	for _, u := range w.plan(taken) {
		var err error
		if len(u.ops) == 1 {
			err = w.runOne(t, u.ops[0])
		} else {
			err = w.runBulk(t, u)
		}
		if err != nil {
			// The transaction is in an unknown state: nothing of it may
			// be committed, and every caller hears so.
			_, _ = t.exec("ROLLBACK")
			w.fail(taken, err)
			return
		}
	}
	committing := time.Now()
	_, err := t.exec("COMMIT")
	w.commits.Add(int64(time.Since(committing)))
	if err != nil {
		_, _ = t.exec("ROLLBACK")
		w.fail(taken, fmt.Errorf("sqlite: commit: %w", err))
		return
	}
	if w.refusing.Load() && (w.byLock.Load() || w.totalChanges() > w.refusedAt) {
		w.refusing.Store(false)
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
	err = unavailable(err)
	if verifyd.ErrorCode(err) == verifyd.EUNAVAILABLE {
		w.refusedAt = w.totalChanges()
		w.byLock.Store(isLocked(err))
		w.refusing.Store(true)
	}
	for _, o := range group {
		if o.err == nil && o.panicked == nil {
			o.err = err
		}
	}
}

// plan puts the writes of a group into units, in the order of the first
// write of each: a plain write alone, the writes of a bulk kind together.
func (w *writer) plan(group []*op) []unit {
	units := w.units[:0]
next:
	for _, o := range group {
		if o.bulk != nil {
			for i := range units {
				if units[i].bulk == o.bulk {
					units[i].ops = append(units[i].ops, o)
					continue next
				}
			}
		}
		// Reuse the slice a unit in this place had last time.
		var ops []*op
		if len(units) < cap(units) {
			ops = units[:len(units)+1][len(units)].ops[:0]
		}
		units = append(units, unit{bulk: o.bulk, ops: append(ops, o)})
	}
	w.units = units
	return units
}

// runBulk runs the writes of a bulk kind together in one savepoint and,
// when that fails, each alone in its own. The error returned is a failure
// of the savepoint machinery, which loses the whole group.
func (w *writer) runBulk(t *tx, u unit) error {
	if _, err := t.exec("SAVEPOINT bulk"); err != nil {
		return fmt.Errorf("sqlite: savepoint: %w", err)
	}
	panicked, err := call(t, func(t *tx) error { return u.bulk.run(t, u.ops) })
	if err == nil && panicked == nil {
		if _, err := t.exec("RELEASE bulk"); err != nil {
			return fmt.Errorf("sqlite: release savepoint: %w", err)
		}
		w.bulkRuns.Add(1)
		return nil
	}
	if _, err := t.exec("ROLLBACK TO bulk"); err != nil {
		return fmt.Errorf("sqlite: rollback to savepoint: %w", err)
	}
	if _, err := t.exec("RELEASE bulk"); err != nil {
		return fmt.Errorf("sqlite: release savepoint: %w", err)
	}
	for _, o := range u.ops {
		if err := w.runOne(t, o); err != nil {
			return err
		}
	}
	return nil
}

// runOne runs one write inside its savepoint. Its own failure goes to its
// caller only; the error returned is a failure of the savepoint machinery,
// which loses the whole group.
func (w *writer) runOne(t *tx, o *op) error {
	if _, err := t.exec("SAVEPOINT op"); err != nil {
		return fmt.Errorf("sqlite: savepoint: %w", err)
	}
	o.panicked, o.err = call(t, o.fn)
	o.err = unavailable(o.err)
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
		for _, r := range t.open {
			r.Close()
		}
		t.open = t.open[:0]
		if p := recover(); p != nil {
			panicked = fmt.Sprintf("%v [recovered in the sqlite writer]\n%s", p, debug.Stack())
		}
	}()
	return nil, fn(t)
}

// totalChanges is the number of rows the writer's connection has changed
// since it opened, or -1 when it cannot tell.
func (w *writer) totalChanges() int64 {
	var n int64
	if err := w.conn.QueryRowContext(context.Background(), "SELECT total_changes()").Scan(&n); err != nil {
		return -1
	}
	return n
}

// isLocked reports whether err is SQLite's BUSY or LOCKED: another
// connection held a lock the writer needed.
func isLocked(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code() & 0xff
	return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
}

// unavailable marks EUNAVAILABLE (503: try again later) an error of the
// database itself rather than of the write: a lock another process held
// past the busy timeout, a full disk, an I/O error. The write is then not
// wrong, only impossible for now, and the writer takes writes again once
// the cause is gone.
func unavailable(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR,
		sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PROTOCOL:
		return fmt.Errorf("%w: %w", verifyd.Errorf(verifyd.EUNAVAILABLE, "the database is unavailable"), err)
	}
	return err
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
