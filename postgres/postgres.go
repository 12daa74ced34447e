// Package postgres is the verifyd.Store that many verifyd instances share:
// PostgreSQL through github.com/jackc/pgx/v5.
//
// Every promise of verifyd.Store holds across instances because it is kept
// by the database, not by a process: a validate writes its row only if it
// is still the row its fn saw, a create locks its limit buckets in one
// order, a claim skips rows another claim holds. Each call is bounded by a
// timeout, and a database that does not answer is reported as
// verifyd.EUNAVAILABLE (a 503), never as a hang.
//
// Writes that wait at the same moment share a transaction and its commit
// (see groups): creates, validates, inbox messages, receipts. Most take one
// round trip: statements that need no Go logic between them go in one
// pipelined batch, which PostgreSQL runs as one implicit transaction. A
// validate takes two, a read and a write, with no transaction open between
// them; a create with limits takes two in one transaction, its buckets
// locked once per group.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"verifyd"
)

var _ verifyd.Store = (*Store)(nil)

// DefaultTimeout bounds each call when Open is given no WithTimeout.
const DefaultTimeout = 5 * time.Second

// Store is a verifyd.Store on a PostgreSQL database. It is safe for
// concurrent use, and any number of Stores (in any number of processes) may
// share one database.
type Store struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	// lockWait, when set (by tests only), replaces lockedWait's bound.
	lockWait time.Duration

	creates    *groups[createArgs]
	validates  *groups[*validateArgs]
	inbox      *groups[[]*verifyd.InboxMessage]
	receipts   *groups[verifyd.Receipt]
	closed     chan struct{}
	closeOnce  sync.Once
	committers sync.WaitGroup
}

// Option changes how Open sets a Store up.
type Option func(*options)

type options struct {
	timeout time.Duration
}

// WithTimeout bounds every call (waiting for a connection included); past
// it the call fails with EUNAVAILABLE. A grouped write (a create, a
// validate, a receipt) waits for its turn and then for its group's commit,
// each within the timeout: it fails within about twice the timeout however
// many calls wait at once. Zero or less keeps DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// Open connects to the database at dsn (a postgres:// URL or key=value
// string; pool_max_conns and the other pgxpool settings are honoured) and
// checks that it answers and that its commits are durable. It does not
// migrate: call Migrate.
//
// Open refuses a database whose connections run with synchronous_commit off
// or local: verifyd answers 202 only for a committed verification, and with
// those settings a commit can be acknowledged and then lost.
//
// Across a network, Open insists on TLS that verifies the server: with no
// sslmode it connects as sslmode=verify-full, and it refuses sslmode=allow,
// prefer and require, which verify nothing (see tlsRule).
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	o := options{timeout: DefaultTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := parseConfig(dsn, o)
	if err != nil {
		return nil, err
	}
	cfg.AfterConnect = checkDurable
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool, timeout: o.timeout, closed: make(chan struct{})}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		var weak *weakCommitError
		if errors.As(err, &weak) {
			return nil, weak
		}
		return nil, fmt.Errorf("postgres: cannot reach the database: %w", err)
	}
	s.creates, s.validates = s.newCreateGroups(), s.newValidateGroups()
	s.inbox, s.receipts = s.newInboxGroups(), s.newReceiptGroups()
	s.creates.start(s)
	s.validates.start(s)
	s.inbox.start(s)
	s.receipts.start(s)
	return s, nil
}

// dsnError is what pgx's failure to read dsn says, without dsn: pgx quotes
// it (hiding a URL's password, but not one in a key=value string or inside
// a URL that does not parse), so only the reason after the quote is kept,
// and only when it does not hold the password either.
func dsnError(dsn string, err error) error {
	const msg = "postgres: the database address is not a valid connection string"
	text := err.Error()
	_, reason, ok := strings.Cut(text, "`: ")
	if !ok || !strings.HasPrefix(text, "cannot parse `") {
		return errors.New(msg)
	}
	if u, perr := url.Parse(dsn); perr != nil {
		return errors.New(msg)
	} else if pw, set := u.User.Password(); set && pw != "" && strings.Contains(reason, pw) {
		return errors.New(msg)
	}
	return errors.New(msg + ": " + reason)
}

// parseConfig is the pool's configuration for dsn: the connection string
// as pgx reads it (with the PG* environment), with TLS that verifies the
// server across a network (verifyTLS) and the settings the Store relies on.
func parseConfig(dsn string, o options) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, dsnError(dsn, err)
	}
	if err := verifyTLS(&cfg.ConnConfig.Config, writtenSSLMode(dsn, os.Getenv)); err != nil {
		return nil, err
	}
	if cfg.ConnConfig.ConnectTimeout <= 0 || cfg.ConnConfig.ConnectTimeout > o.timeout {
		cfg.ConnConfig.ConnectTimeout = o.timeout
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		// pgxpool's default (4 on a small machine) would leave reads
		// (finds, the inbox, sign-ins) queued behind the committers and the
		// delivery worker, which hold one each.
		cfg.MaxConns = int32(max(16, 4*runtime.NumCPU()))
	}
	if cfg.MaxConns < 2 {
		// TryMaintenance holds one connection while fn uses others.
		cfg.MaxConns = 2
	}
	if _, set := cfg.ConnConfig.RuntimeParams["default_transaction_isolation"]; !set {
		// The locking here relies on READ COMMITTED: a statement that waited
		// for a row lock, and every statement after it, reads what the other
		// transaction committed. A database whose default is stricter would
		// turn those waits into serialization failures.
		cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "read committed"
	}
	if _, set := cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"]; !set {
		// A create with limits (and a validate whose row changed under it)
		// keeps its transaction open across two round trips; if the
		// instance dies between them, the server frees its row locks after
		// this instead of when TCP notices.
		cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = fmt.Sprint((2 * o.timeout).Milliseconds())
	}
	for param, value := range plannerParams {
		if _, set := cfg.ConnConfig.RuntimeParams[param]; !set {
			cfg.ConnConfig.RuntimeParams[param] = value
		}
	}
	return cfg, nil
}

// plannerParams fix how the server plans the Store's statements. Each one
// looks up the rows its arguments name: arrays unnested and joined to
// tables by key. Left to itself, PostgreSQL plans the grouped statements
// anew at every call (a plan for the arrays' actual lengths always looks
// cheaper than one for any length), and for a long enough array it may
// join by hashing a scan of the whole table, a cost that grows with the
// table: a group of creates charging limits read every limit bucket.
// Planned once per connection instead, a statement is often planned while
// its tables are new and nearly empty, when reading a whole table looks
// cheaper than a few index lookups, and that plan stays until autovacuum
// analyzes the table, a minute or more, while the table grows by thousands
// of rows a second. Without sequential scans, hash joins and merge joins,
// a join over an array can only be a nested loop of index lookups, right
// at any size, and so one plan per connection serves every call. (The
// partial indexes, tiny and so tempting, are kept out of reach of the
// lookups too: migrations/0005_claim_only_indexes.sql.) A table with no
// index for a statement is still scanned: the purge of limit buckets by
// time. A setting in the DSN wins.
//
// JIT is off: a scan that enable_seqscan=off must still make (the purge of
// limit buckets, the list of blocks) is costed so high that the server
// compiles it, which took 88 of a 108 ms purge batch; none of the Store's
// statements runs long enough to gain from compiling.
//
// Measured (database CPU per operation): BenchmarkUpdateVerification 69-74
// -> 40-43 µs; BenchmarkCreateVerification/TwoInstances/Parallel64 (with
// limits) 213-401 -> 67-80 µs; BenchmarkDelivery 160-272 µs, with runs at
// 848 when a burst backed the queue up, -> 115-132 µs.
var plannerParams = map[string]string{
	"plan_cache_mode":  "force_generic_plan",
	"enable_hashjoin":  "off",
	"enable_mergejoin": "off",
	"enable_seqscan":   "off",
	"jit":              "off",
}

// weakCommitError is a connection whose commits are not durable.
type weakCommitError struct{ setting string }

func (e *weakCommitError) Error() string {
	return fmt.Sprintf("postgres: synchronous_commit is %q for this database's connections, so a commit could be "+
		"acknowledged and then lost; verifyd needs it on (or remote_write, remote_apply): remove the setting with "+
		"ALTER DATABASE ... RESET synchronous_commit or ALTER ROLE ... RESET synchronous_commit, or drop it from the "+
		"connection string", e.setting)
}

// checkDurable refuses every new connection with a weak synchronous_commit,
// so a setting changed after Open is caught too.
func checkDurable(ctx context.Context, conn *pgx.Conn) error {
	var setting string
	if err := conn.QueryRow(ctx, "SHOW synchronous_commit").Scan(&setting); err != nil {
		return err
	}
	if setting == "off" || setting == "local" {
		return &weakCommitError{setting: setting}
	}
	return nil
}

// Close waits for the groups being committed, then closes every
// connection once the other calls in flight have finished. Calls after
// Close fail.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.committers.Wait()
		s.pool.Close()
	})
	return nil
}

// Ping reports whether the database answers: EUNAVAILABLE if it does not
// within the Store's timeout.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err := s.translate(ctx, s.pool.Ping(ctx))
	if err != nil && verifyd.ErrorCode(err) != verifyd.EUNAVAILABLE {
		return s.unavailable(err)
	}
	return err
}

// bound limits ctx to the Store's timeout.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// unavailable is EUNAVAILABLE carrying its cause for the logs. Only its
// Message reaches a client, and it says "database unavailable".
func (s *Store) unavailable(cause error) error {
	return fmt.Errorf("postgres: %w: %w", &verifyd.Error{Code: verifyd.EUNAVAILABLE, Message: "database unavailable"}, cause)
}

// translate turns a driver error into the product's: a unique violation is
// ECONFLICT, a database that cannot answer (down, unreachable, restarting,
// out of connections, timed out) is EUNAVAILABLE. A caller that gave up
// gets its context's error; anything else stays as it is, an internal error
// whose cause is logged by the caller.
//
// A lost connection usually means every pooled connection is lost (the
// server restarted, the network dropped, a failover happened), so the pool
// is reset: the next call dials afresh instead of tripping over each stale
// connection in turn, and the Store recovers as soon as the database does.
func (s *Store) translate(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var e *verifyd.Error
	if errors.As(err, &e) {
		return err
	}
	if connectionLost(err) {
		s.pool.Reset()
		return s.unavailable(err)
	}
	switch ctx.Err() {
	case context.Canceled:
		return fmt.Errorf("postgres: %w", err)
	case context.DeadlineExceeded:
		return s.unavailable(err)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return verifyd.Errorf(verifyd.ENOTFOUND, "not found")
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch code := pgErr.Code; {
		case code == "23505":
			return fmt.Errorf("postgres: %w: %w", verifyd.Errorf(verifyd.ECONFLICT, "already exists"), err)
		case strings.HasPrefix(code, "53"), // insufficient resources: too many connections, disk full
			strings.HasPrefix(code, "58"), // system error: I/O
			code == "57014",               // query canceled: our timeout
			code == "55P03":               // lock not available: the server's lock_timeout
			return s.unavailable(err)
		}
		return fmt.Errorf("postgres: %w", err)
	}
	var weak *weakCommitError
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) || errors.As(err, &weak) {
		return s.unavailable(err)
	}
	return fmt.Errorf("postgres: %w", err)
}

// connectionLost reports an error that means the connection, not the
// statement, failed.
func connectionLost(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		code := pgErr.Code
		return strings.HasPrefix(code, "08") || // connection exception
			code == "57P01" || code == "57P02" || code == "57P03" || // shut down, crashed, starting up
			code == "25006" // read-only transaction: connected to a standby after a failover
	}
	var (
		connectErr *pgconn.ConnectError
		netErr     net.Error
	)
	return errors.As(err, &connectErr) || (errors.As(err, &netErr) && !netErr.Timeout()) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgconn.ErrConnClosed)
}

// do runs fn under the Store's timeout, once more if the first try failed
// before anything reached the server (a pooled connection found dead), and
// translates its error.
func (s *Store) do(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err := fn(ctx)
	if err != nil && pgconn.SafeToRetry(err) && ctx.Err() == nil {
		err = fn(ctx)
	}
	return s.translate(ctx, err)
}

// Times are stored as Unix milliseconds and read back in UTC.

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// nullMS stores the zero time as NULL.
func nullMS(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	v := t.UnixMilli()
	return &v
}

func fromNullMS(v *int64) time.Time {
	if v == nil {
		return time.Time{}
	}
	return fromMS(*v)
}
