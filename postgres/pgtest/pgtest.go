// Package pgtest runs a throwaway PostgreSQL 15 cluster for tests: a fresh
// data directory in a temp dir, listening only on 127.0.0.1 on a free port,
// with trust authentication and its unix socket kept inside that temp dir.
//
// One cluster per test binary is the intended use (see Main); each test then
// makes its own database (CreateDatabase, CloneDatabase) or, quicker, its own
// schema (CreateSchema).
//
// The postmaster is the test binary's own child and is told by the kernel to
// shut down immediately if the test binary dies (a panic, a -timeout, a
// kill), so no server outlives its tests. A data directory left behind by a
// killed binary is removed by the next Start.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// BinDir is where Debian's postgresql-15 package puts the server binaries.
const BinDir = "/usr/lib/postgresql/15/bin"

// dirPrefix names every cluster's temp dir, so Start can find stale ones.
const dirPrefix = "verifyd-pgtest-"

// Cluster is one running (or stopped) throwaway PostgreSQL cluster.
type Cluster struct {
	dir  string              // temp dir: data/, the socket, postgres.log, owner.lock
	cred *syscall.Credential // the postgres user's, when the test runs as root
	lock *os.File            // flock held for the cluster's life: the dir is not stale
	port int

	mu     sync.Mutex
	server *server // nil while stopped
}

// server is one run of the postmaster.
type server struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the postmaster has exited and been reaped
}

// Start creates a cluster with initdb and starts it. It needs PostgreSQL 15
// in BinDir; when the test runs as root, the server runs as the "postgres"
// user, which the Debian package creates.
func Start(ctx context.Context) (*Cluster, error) {
	if _, err := os.Stat(filepath.Join(BinDir, "initdb")); err != nil {
		return nil, fmt.Errorf("pgtest: PostgreSQL 15 is not installed (no %s): run apt-get install -y postgresql", BinDir)
	}
	tmp := os.TempDir()
	if os.Geteuid() == 0 && !traversable(tmp) {
		// The server runs as postgres, which must reach its data dir.
		tmp = "/tmp"
	}
	removeStale(tmp)

	dir, err := os.MkdirTemp(tmp, dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{dir: dir}
	if err := c.init(ctx); err != nil {
		c.removeDir()
		return nil, err
	}
	// The port is picked free, but another process may take it before the
	// postmaster binds it: try a few.
	for range 5 {
		if c.port, err = freePort(); err != nil {
			break
		}
		if err = c.StartServer(ctx); err == nil || !errors.Is(err, errAddrInUse) {
			break
		}
	}
	if err != nil {
		c.removeDir()
		return nil, err
	}
	return c, nil
}

// init takes the dir's lock, hands the dir to the server's user and runs
// initdb.
func (c *Cluster) init(ctx context.Context) error {
	lock, err := os.OpenFile(filepath.Join(c.dir, "owner.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	c.lock = lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("pgtest: lock %s: %w", c.dir, err)
	}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("pgtest: running as root, the server must run as the postgres user: %w (apt-get install -y postgresql creates it)", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(c.dir, int(uid), int(gid)); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	// --no-sync: the cluster is thrown away; the server itself keeps fsync
	// on, so commits are as durable as in production.
	cmd := exec.CommandContext(ctx, filepath.Join(BinDir, "initdb"),
		"-D", c.dataDir(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C",
		"--no-sync", "--no-instructions")
	cmd.Dir = c.dir
	cmd.Env = []string{"LC_ALL=C", "TZ=UTC"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	return nil
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *Cluster) logPath() string { return filepath.Join(c.dir, "postgres.log") }

// Port is the TCP port the cluster listens on, on 127.0.0.1. It stays the
// same across StopServer and StartServer.
func (c *Cluster) Port() int { return c.port }

// DSN is the connection string of database dbname as the superuser
// "postgres", which trust authentication lets in without a password.
func (c *Cluster) DSN(dbname string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, url.PathEscape(dbname))
}

// CreateDatabase creates an empty database and returns its DSN. One of
// that name made earlier in the cluster's life (a test run again with
// -count) is dropped first.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (dsn string, err error) {
	return c.admin(ctx, name, dropDatabase(name), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
}

// CloneDatabase creates database name as a copy of template, which must have
// no open connection, and returns its DSN (dropping one of that name first,
// as CreateDatabase does): a copy of a migrated template
// needs no migrating. Any CREATE DATABASE copies and logs a whole template
// (about a quarter of a second here); CreateSchema is quicker still.
func (c *Cluster) CloneDatabase(ctx context.Context, name, template string) (dsn string, err error) {
	return c.admin(ctx, name, dropDatabase(name),
		"CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{template}.Sanitize())
}

// CreateSchema creates an empty schema in database dbname and returns a DSN
// whose connections use it (search_path). A schema is several times quicker
// to make than a database (CREATE DATABASE copies and logs the whole
// template), and isolates tables as well; advisory locks, database settings
// and connections are still shared with the rest of the database.
func (c *Cluster) CreateSchema(ctx context.Context, dbname, schema string) (dsn string, err error) {
	conn, err := pgconn.Connect(ctx, c.DSN(dbname))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	sql := "CREATE SCHEMA " + pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, sql).ReadAll(); err != nil {
		return "", fmt.Errorf("pgtest: %s: %w", sql, err)
	}
	// libpq-style URLs do not read "+" as a space.
	return c.DSN(dbname) + "&search_path=" + strings.ReplaceAll(url.QueryEscape(pgx.Identifier{schema}.Sanitize()), "+", "%20"), nil
}

// DropSchema drops a schema of database dbname and everything in it.
func (c *Cluster) DropSchema(ctx context.Context, dbname, schema string) error {
	conn, err := pgconn.Connect(ctx, c.DSN(dbname))
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	sql := "DROP SCHEMA IF EXISTS " + pgx.Identifier{schema}.Sanitize() + " CASCADE"
	if _, err := conn.Exec(ctx, sql).ReadAll(); err != nil {
		return fmt.Errorf("pgtest: %s: %w", sql, err)
	}
	return nil
}

// dropDatabase drops database name if it exists, closing any connection
// still open to it.
func dropDatabase(name string) string {
	return "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"
}

// DropDatabase drops a database, closing any connection still open to it.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	_, err := c.admin(ctx, name, dropDatabase(name))
	return err
}

// admin runs statements in the "postgres" database, one after the other,
// and returns the DSN of database name.
func (c *Cluster) admin(ctx context.Context, name string, sqls ...string) (string, error) {
	conn, err := pgconn.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// One statement at a time: CREATE DATABASE refuses to share one.
	for _, sql := range sqls {
		if _, err := conn.Exec(ctx, sql).ReadAll(); err != nil {
			return "", fmt.Errorf("pgtest: %s: %w", sql, err)
		}
	}
	return c.DSN(name), nil
}

// errAddrInUse marks a start that failed because the port was taken.
var errAddrInUse = errors.New("address in use")

// StartServer starts the postmaster again after StopServer, on the same
// port and data, and returns once it accepts connections.
func (c *Cluster) StartServer(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.server != nil {
		return errors.New("pgtest: server already running")
	}
	logFile, err := os.OpenFile(c.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logFile.Close() // the child keeps its own copy
	logStart, _ := logFile.Seek(0, 2)

	cmd := exec.Command(filepath.Join(BinDir, "postgres"),
		"-D", c.dataDir(),
		"-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+c.dir,
		"-c", "max_connections=200",
		"-c", "max_parallel_workers_per_gather=0",
		"-c", "timezone=UTC",
	)
	cmd.Dir = c.dir
	cmd.Env = []string{"LC_ALL=C", "TZ=UTC"}
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: c.cred,
		// If the test binary dies, the kernel tells the postmaster to shut
		// down at once (SIGQUIT), so no server is left behind.
		Pdeathsig: syscall.SIGQUIT,
		// A terminal's ^C reaches the test binary only; it stops the server.
		Setpgid: true,
	}
	s, err := spawn(cmd)
	if err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	if err := c.waitReady(ctx, s); err != nil {
		stop(s, syscall.SIGQUIT)
		tail := c.logSince(logStart)
		if strings.Contains(tail, "could not bind") || strings.Contains(tail, "Address already in use") {
			return fmt.Errorf("pgtest: port %d: %w", c.port, errAddrInUse)
		}
		return fmt.Errorf("pgtest: postgres did not start: %w\n%s", err, tail)
	}
	c.server = s
	return nil
}

// spawn starts cmd from a goroutine locked to its thread. Pdeathsig fires
// when the thread that forked the child ends, so that thread must live as
// long as the child: the goroutine stays locked until the child is reaped,
// then exits, which ends the thread.
func spawn(cmd *exec.Cmd) (*server, error) {
	s := &server{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, on purpose (see above)
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait() // the exit status of a signalled server says nothing useful
		close(s.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return s, nil
}

// waitReady polls until the server accepts a connection, gives up, or exits.
func (c *Cluster) waitReady(ctx context.Context, s *server) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgconn.Connect(attempt, c.DSN("postgres"))
		cancelAttempt()
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-s.done:
			return errors.New("the server exited")
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// StopServer shuts the server down (fast shutdown: sessions are ended,
// committed data is kept) and waits for it to exit. StartServer brings it
// back. Stopping a stopped server does nothing.
func (c *Cluster) StopServer() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.server == nil {
		return nil
	}
	err := stop(c.server, syscall.SIGINT)
	c.server = nil
	return err
}

// stop signals the postmaster and waits for it, escalating to immediate
// shutdown and then to SIGKILL if it lingers. The postmaster waits for its
// own children before it exits, so once it is gone so is every backend.
func stop(s *server, sig syscall.Signal) error {
	for _, step := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{sig, 20 * time.Second}, {syscall.SIGQUIT, 10 * time.Second}, {syscall.SIGKILL, 10 * time.Second}} {
		if err := s.cmd.Process.Signal(step.sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("pgtest: signal postgres: %w", err)
		}
		select {
		case <-s.done:
			if step.sig == syscall.SIGKILL {
				return errors.New("pgtest: postgres had to be killed")
			}
			return nil
		case <-time.After(step.wait):
		}
	}
	return errors.New("pgtest: postgres does not exit")
}

// Stop shuts the server down at once and removes the cluster's directory.
// The cluster cannot be used afterwards.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	s := c.server
	c.server = nil
	c.mu.Unlock()
	var err error
	if s != nil {
		// Immediate shutdown: nothing of a throwaway cluster needs a checkpoint.
		err = stop(s, syscall.SIGQUIT)
	}
	if rmErr := c.removeDir(); err == nil {
		err = rmErr
	}
	return err
}

func (c *Cluster) removeDir() error {
	err := os.RemoveAll(c.dir)
	if c.lock != nil {
		c.lock.Close()
	}
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// logSince returns the server log written after offset, for error messages.
func (c *Cluster) logSince(offset int64) string {
	b, err := os.ReadFile(c.logPath())
	if err != nil || offset > int64(len(b)) {
		return ""
	}
	return string(b[offset:])
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// removeStale deletes the directories of clusters whose test binary died
// without Stop: their lock is free and no postmaster runs in them (the
// kernel has told it to quit). A directory still being set up holds its
// lock, or is too young to judge.
func removeStale(tmp string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, dirPrefix+"*"))
	for _, dir := range dirs {
		info, err := os.Stat(dir)
		if err != nil || time.Since(info.ModTime()) < time.Minute {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, "owner.lock"), os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil && !postmasterAlive(dir) {
			os.RemoveAll(dir)
		}
		f.Close()
	}
}

// postmasterAlive reports whether the pid in the data dir's postmaster.pid
// names a live process.
func postmasterAlive(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if err != nil {
		return false
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}

// traversable reports whether every user may pass through dir and each of
// its parents.
func traversable(dir string) bool {
	for {
		info, err := os.Stat(dir)
		if err != nil || info.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}
