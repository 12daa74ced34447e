package pgtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var cluster *Cluster

func TestMain(m *testing.M) {
	if os.Getenv("PGTEST_CRASH_CHILD") != "" {
		crashChild()
		return
	}
	Main(m, func(c *Cluster) { cluster = c })
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func show(t *testing.T, conn *pgx.Conn, setting string) string {
	t.Helper()
	var v string
	if err := conn.QueryRow(t.Context(), "SHOW "+setting).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestClusterListensOnLoopbackOnlyWithItsSocketInItsDir(t *testing.T) {
	t.Parallel()
	conn := connect(t, cluster.DSN("postgres"))
	for setting, want := range map[string]string{
		"listen_addresses":        "127.0.0.1",
		"unix_socket_directories": cluster.dir,
		"port":                    strconv.Itoa(cluster.Port()),
		"fsync":                   "on",
		"synchronous_commit":      "on",
	} {
		if got := show(t, conn, setting); got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(cluster.dir, ".s.PGSQL."+strconv.Itoa(cluster.Port()))); err != nil {
		t.Errorf("socket not in the cluster's dir: %v", err)
	}
}

func TestClusterRunsAsPostgresWhenRoot(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only root hands the server to another user")
	}
	conn := connect(t, cluster.DSN("postgres"))
	var pid int
	if err := conn.QueryRow(t.Context(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	uid := fmt.Sprint(cluster.cred.Uid)
	for line := range strings.Lines(string(status)) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && f[1] != uid {
			t.Errorf("backend runs as uid %s, want %s", f[1], uid)
		}
	}
}

func TestCloneDatabaseCopiesTheTemplate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn, err := cluster.CreateDatabase(ctx, "clone_template")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmpl.Exec(ctx, "CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')"); err != nil {
		t.Fatal(err)
	}
	tmpl.Close(ctx)

	dsn, err = cluster.CloneDatabase(ctx, "clone_copy", "clone_template")
	if err != nil {
		t.Fatal(err)
	}
	var v string
	if err := connect(t, dsn).QueryRow(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != "kept" {
		t.Fatalf("copy has %q, %v; want kept", v, err)
	}
}

func TestDropDatabaseClosesItsConnections(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn, err := cluster.CreateDatabase(ctx, "dropped")
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t, dsn)
	if err := cluster.DropDatabase(ctx, "dropped"); err != nil {
		t.Fatal(err)
	}
	if err := conn.Ping(ctx); err == nil {
		t.Error("connection to a dropped database still answers")
	}
	if _, err := pgx.Connect(ctx, dsn); err == nil {
		t.Error("dropped database still accepts connections")
	}
}

// The restart test needs a server of its own: stopping the shared one would
// break the tests running beside it.
func TestStopServerKeepsDataAndPortForStartServer(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	dsn, err := c.CreateDatabase(ctx, "kept")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (v int); INSERT INTO t VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	port := c.Port()

	if err := c.StopServer(); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(ctx, dsn); err == nil {
		t.Fatal("stopped server accepts connections")
	}
	if err := c.StartServer(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Port() != port {
		t.Errorf("port %d after restart, want %d", c.Port(), port)
	}
	var v int
	if err := connect(t, dsn).QueryRow(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != 42 {
		t.Fatalf("after restart: %d, %v; want 42", v, err)
	}
}

func TestStopLeavesNoProcessAndNoDirectory(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Hold a session open: its backend must go too.
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	pids := serverPids(t, c.server.cmd.Process.Pid)

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("server process %d still runs after Stop", pid)
		}
	}
	if _, err := os.Stat(c.dir); !os.IsNotExist(err) {
		t.Errorf("cluster dir still there after Stop: %v", err)
	}
}

// A test binary that dies without Stop must not leave its server running:
// a child binary starts a cluster, reports its processes, and exits.
func TestServerOfADeadTestBinaryShutsDown(t *testing.T) {
	t.Parallel()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PGTEST_CRASH_CHILD=1")
	out, err := cmd.Output()
	if err == nil {
		t.Fatalf("child exited 0, want its crash; output:\n%s", out)
	}
	var dir string
	var pids []int
	for line := range strings.Lines(string(out)) {
		if d, ok := strings.CutPrefix(strings.TrimSpace(line), "dir "); ok {
			dir = d
		}
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "pid "); ok {
			pid, _ := strconv.Atoi(p)
			pids = append(pids, pid)
		}
	}
	if dir == "" || len(pids) < 2 {
		t.Fatalf("child did not report its cluster:\n%s", out)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Immediate shutdown takes a moment; bound the wait, not the timing.
	deadline := time.Now().Add(30 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("server process %d outlived its test binary", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func crashChild() {
	c, err := Start(context.Background())
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	fmt.Println("dir", c.dir)
	for _, pid := range serverPids(nil, c.server.cmd.Process.Pid) {
		fmt.Println("pid", pid)
	}
	os.Exit(3)
}

// serverPids lists the postmaster and its children.
func serverPids(t *testing.T, postmaster int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", postmaster, postmaster))
	if err != nil && t != nil {
		t.Fatal(err)
	}
	pids := []int{postmaster}
	for _, f := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(f)
		pids = append(pids, pid)
	}
	return pids
}

// alive reports whether pid runs; a zombie waiting to be reaped does not.
func alive(pid int) bool {
	f, err := os.Open(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	// The state follows the command name, which is in parentheses.
	if i := strings.LastIndexByte(line, ')'); i >= 0 && len(line) > i+2 {
		return line[i+2] != 'Z' && line[i+2] != 'X'
	}
	return syscall.Kill(pid, 0) == nil
}

func TestStartRemovesDirectoriesOfDeadClustersOnly(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	old := time.Now().Add(-time.Hour)
	mk := func(name string, lockFile bool) string {
		dir := filepath.Join(tmp, dirPrefix+name)
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
			t.Fatal(err)
		}
		if lockFile {
			if err := os.WriteFile(filepath.Join(dir, "owner.lock"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	stale := mk("stale", true)
	young := mk("young", true)
	foreign := mk("nolock", false)
	held := mk("held", true)
	lock, err := os.OpenFile(filepath.Join(held, "owner.lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	running := mk("running", true)
	// Our own pid stands in for a live postmaster.
	if err := os.WriteFile(filepath.Join(running, "data", "postmaster.pid"), fmt.Appendf(nil, "%d\n", os.Getpid()), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{stale, foreign, held, running} {
		if err := os.Chtimes(d, old, old); err != nil {
			t.Fatal(err)
		}
	}

	removeStale(tmp)

	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale dir kept: %v", err)
	}
	for _, d := range []string{young, foreign, held, running} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s removed: %v", filepath.Base(d), err)
		}
	}
}

func TestCreateSchemaDSNUsesTheSchema(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	if _, err := cluster.CreateDatabase(ctx, "schemas"); err != nil {
		t.Fatal(err)
	}
	dsnA, err := cluster.CreateSchema(ctx, "schemas", "Mixed Case")
	if err != nil {
		t.Fatal(err)
	}
	dsnB, err := cluster.CreateSchema(ctx, "schemas", "b")
	if err != nil {
		t.Fatal(err)
	}
	a, b := connect(t, dsnA), connect(t, dsnB)
	for _, conn := range []*pgx.Conn{a, b} {
		if _, err := conn.Exec(ctx, "CREATE TABLE t (v text)"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Exec(ctx, "INSERT INTO t VALUES ('a')"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 0 {
		t.Fatalf("schema b sees %d rows (%v), want its own empty table", n, err)
	}
	if err := cluster.DropSchema(ctx, "schemas", "Mixed Case"); err != nil {
		t.Fatal(err)
	}
	if err := b.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = 'Mixed Case'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("dropped schema still listed (%d, %v)", n, err)
	}
}

func TestTraversableNeedsEveryParentOpenToAll(t *testing.T) {
	t.Parallel()
	open := t.TempDir()
	// t.TempDir's own parent is private: open it too.
	for _, d := range []string{open, filepath.Dir(open)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if !traversable(filepath.Dir(filepath.Dir(open))) {
		t.Skip("the temp dir itself is private")
	}
	closed := filepath.Join(open, "closed")
	inner := filepath.Join(closed, "inner")
	if err := os.MkdirAll(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	if !traversable(open) {
		t.Errorf("%s and its parents (0755) are not traversable", open)
	}
	if traversable(inner) {
		t.Errorf("%s is traversable through a 0700 parent", inner)
	}
}
