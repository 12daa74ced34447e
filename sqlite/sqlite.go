// Package sqlite is the embedded verifyd.Store: one SQLite file in WAL mode
// with synchronous=FULL, so a commit is on disk before anyone is told.
//
// SQLite takes one writer at a time, and a durable commit costs an fsync.
// Every write therefore goes through one writer goroutine that runs all the
// writes waiting at that moment in one transaction, each in its own
// savepoint, and commits them with one fsync (group commit). Writes of a
// bulk kind (receipts, inbox messages) waiting together run as one, with
// multi-row statements. Callers are released only after that commit. Reads
// use a separate pool of read-only connections, which WAL lets run beside
// the writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"verifyd"
)

var _ verifyd.Store = (*Store)(nil)

// probeEvery is how often, at most, Ping tries a write while the database
// refuses them: a load balancer's checks come every few seconds.
const probeEvery = 5 * time.Second

// busyTimeout is how long a connection waits for a lock another process
// holds (verifyd accounts create, verifyd migrate) before giving up.
const busyTimeout = 10 * time.Second

// Store is a verifyd.Store on one SQLite database file.
type Store struct {
	w   *writer
	rdb *sql.DB // read-only connections

	reads sync.Map // query -> *sql.Stmt prepared on rdb

	lastProbe atomic.Int64 // when Ping last tried a write, Unix nanoseconds

	closeOnce sync.Once
	closeErr  error
}

// dsn is the data source name of path with a busy timeout and pragmas.
func dsn(path string, pragmas ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s?_pragma=busy_timeout(%d)", path, busyTimeout.Milliseconds())
	for _, p := range pragmas {
		b.WriteString("&_pragma=" + p)
	}
	return b.String()
}

// writerPragmas are the settings of the writer's connection (see Open).
// The benchmark of sqlite/driverfloor runs the same ones, written out again
// (TestDriverFloorRunsTheWritersPragmas holds them together).
var writerPragmas = []string{"journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(ON)",
	"temp_store(MEMORY)", "cache_size(-32768)", "wal_autocheckpoint(20000)"}

// Open opens the database file at path, creating it if needed, and starts
// its writer. It refuses a database that will not run in WAL mode with
// synchronous=FULL, because then a commit could be lost after the caller
// was told it happened. Call Migrate before using the store.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.Contains(path, "?") || strings.HasPrefix(path, ":memory:") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: %q is not a plain database file path", path)
	}
	var (
		dbs   []*sql.DB
		conns []*sql.Conn
	)
	fail := func(err error) (*Store, error) {
		for _, c := range conns {
			c.Close()
		}
		for _, db := range dbs {
			db.Close()
		}
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// one opens a pool of one connection and takes that connection.
	one := func(pragmas ...string) (*sql.Conn, error) {
		db, err := sql.Open("sqlite", dsn(path, pragmas...))
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(1)
		conn, err := db.Conn(ctx)
		if err != nil {
			db.Close()
			return nil, err
		}
		dbs = append(dbs, db)
		conns = append(conns, conn)
		return conn, nil
	}

	// The writer's page cache is large because creates land on random
	// pages of every table keyed by request id. Its savepoint journals stay
	// in memory, or every write would also write a temporary file. It
	// leaves checkpoints to the checkpointer, but for a far-off safety net,
	// so that no caller waits on one.
	//
	// Two processes opening a new file at once both want the exclusive lock
	// that turning WAL on takes; SQLite answers one of them BUSY at once,
	// not after the busy timeout, since waiting could deadlock. That one
	// tries again until the timeout: by then the file is in WAL mode.
	var (
		wconn *sql.Conn
		err   error
	)
	for start := time.Now(); ; {
		wconn, err = one(writerPragmas...)
		if err == nil || !isLocked(err) || time.Since(start) > busyTimeout || ctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return fail(err)
	}
	if err := checkDurable(ctx, wconn); err != nil {
		return fail(err)
	}
	cconn, err := one("synchronous(FULL)")
	if err != nil {
		return fail(err)
	}
	rdb, err := sql.Open("sqlite", dsn(path, "query_only(ON)"))
	if err != nil {
		return fail(err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	rdb.SetMaxOpenConns(readers)
	rdb.SetMaxIdleConns(readers)

	c := newCheckpointer(dbs[1], cconn)
	return &Store{w: newWriter(dbs[0], wconn, c, maxGroup), rdb: rdb}, nil
}

// read returns the statement for query prepared on the read pool, which
// keeps it prepared on each connection it runs on: a read repeated many
// times a second, such as a page polling the inbox, would otherwise spend
// more time being compiled than being run.
func (s *Store) read(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.reads.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.rdb.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if had, loaded := s.reads.LoadOrStore(query, st); loaded {
		st.Close()
		return had.(*sql.Stmt), nil
	}
	return st, nil
}

// checkDurable reads back the settings a durable commit depends on: the
// pragmas in the DSN fail silently on some files (an in-memory database, a
// file system without shared memory), and the promise of a 202 rests on them.
func checkDurable(ctx context.Context, conn *sql.Conn) error {
	var mode string
	var sync, fk int
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return err
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		return err
	}
	switch {
	case !strings.EqualFold(mode, "wal"):
		return fmt.Errorf("journal_mode is %q, not wal: refusing to run without write-ahead logging", mode)
	case sync != 2:
		return fmt.Errorf("synchronous is %d, not FULL (2): refusing to run with commits that may not be on disk", sync)
	case fk != 1:
		return errors.New("foreign keys are off: refusing to run without them")
	}
	return nil
}

// Close finishes the writes already waiting, stops the writer and closes
// every connection. Writes after Close fail with EUNAVAILABLE.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		s.reads.Range(func(_, st any) bool {
			errs = append(errs, st.(*sql.Stmt).Close())
			return true
		})
		s.closeErr = errors.Join(append(errs, s.w.close(), s.rdb.Close())...)
	})
	return s.closeErr
}

// Ping reports whether the database answers to a read, the writer runs,
// and the database takes writes: after a transaction failed for the
// database's own reasons (a full disk, an I/O error, a lock held
// elsewhere), until a commit changes a row or Ping's own probe commits.
func (s *Store) Ping(ctx context.Context) error {
	if s.w.stopped() {
		return errClosed
	}
	if s.w.refusing.Load() {
		refused := verifyd.Errorf(verifyd.EUNAVAILABLE, "the database refuses writes")
		if s.w.byLock.Load() {
			return refused // the delivery worker's next claim clears it
		}
		// Nothing may come to clear it (a node out of its load balancer
		// gets no creates), so ask, once in a while: a write of the header
		// page, which needs the disk and changes nothing.
		if last := s.lastProbe.Load(); last != 0 && time.Since(time.Unix(0, last)) < probeEvery {
			return refused
		}
		s.lastProbe.Store(time.Now().UnixNano())
		if err := s.w.write(ctx, func(t *tx) error {
			var v int64
			if err := t.queryRow("PRAGMA user_version").Scan(&v); err != nil {
				return err
			}
			_, err := t.execOnce(fmt.Sprintf("PRAGMA user_version = %d", v))
			return err
		}); err != nil {
			return fmt.Errorf("%w: %w", refused, err)
		}
		s.w.refusing.Store(false)
	}
	var one int
	if err := s.rdb.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("%w: %w", verifyd.Errorf(verifyd.EUNAVAILABLE, "the database does not answer"), err)
	}
	return nil
}

// WriteStats counts the writer's work since Open. Writes/Groups is the
// mean group size: how many writes shared each commit's fsync.
type WriteStats struct {
	Groups int64 // transactions committed or attempted
	Writes int64 // writes run in them
	Bulks  int64 // times the writes of one kind waiting together ran as one

	// Busy is how long the writer has been running groups, Committing the
	// part of it in COMMIT (writing the WAL and waiting for the fsync). The
	// writer is one goroutine: Busy close to the time passed means that it
	// is the bound.
	Busy, Committing time.Duration

	Checkpoints        int64 // WAL checkpoints run beside the writer
	CheckpointFailures int64 // of which failed; the next one retries
}

// WriteStats returns the writer's counts so far, for metrics.
func (s *Store) WriteStats() WriteStats {
	return WriteStats{
		Groups:             s.w.groups.Load(),
		Writes:             s.w.writes.Load(),
		Bulks:              s.w.bulkRuns.Load(),
		Busy:               time.Duration(s.w.busy.Load()),
		Committing:         time.Duration(s.w.commits.Load()),
		Checkpoints:        s.w.ckpt.runs.Load(),
		CheckpointFailures: s.w.ckpt.failures.Load(),
	}
}

// errClosed is what a write gets once the store is closed.
var errClosed = verifyd.Errorf(verifyd.EUNAVAILABLE, "the database is closed")

// notFound is the ENOTFOUND error for a missing thing.
func notFound(what string) error {
	return verifyd.Errorf(verifyd.ENOTFOUND, "%s not found", what)
}

// isConflict reports whether err is a unique or primary key violation,
// judged by SQLite's extended result code, never by the message text.
func isConflict(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code()
	return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// ms is t as stored: integer Unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

// nullMS stores the zero time as NULL, for times that may not have
// happened yet.
func nullMS(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

// fromMS reads a stored time back in UTC.
func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// fromNullMS reads a nullable stored time; NULL is the zero time.
func fromNullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}
