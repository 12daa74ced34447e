package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"verifyd"
)

// openTest opens and migrates a store on a new file; the file's path is
// returned too, for tests that look underneath.
func openTest(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "verifyd.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s, path
}

// scratch adds a table of keys to write into, away from the schema.
func scratch(t *testing.T, s *Store) {
	t.Helper()
	err := s.w.write(t.Context(), func(tx *tx) error {
		_, err := tx.execOnce(`CREATE TABLE scratch (k TEXT PRIMARY KEY);
			CREATE TABLE parent (id INTEGER PRIMARY KEY);
			CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)`)
		return err
	})
	if err != nil {
		t.Fatalf("scratch tables: %v", err)
	}
}

// insert is a write that adds key to the scratch table.
func insert(key string) func(*tx) error {
	return func(tx *tx) error {
		_, err := tx.exec("INSERT INTO scratch (k) VALUES (?)", key)
		return err
	}
}

// keys reads the scratch table through the read pool: what is committed.
func keys(t *testing.T, s *Store) string {
	t.Helper()
	rows, err := s.rdb.QueryContext(t.Context(), "SELECT k FROM scratch ORDER BY k")
	if err != nil {
		t.Fatalf("read scratch: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	return strings.Join(out, ",")
}

// hold occupies the writer until release is called, so that the writes
// sent meanwhile queue up and make the next group.
func hold(t *testing.T, s *Store) (release func()) {
	t.Helper()
	entered, done := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- s.w.write(context.Background(), func(*tx) error {
			close(entered)
			<-done
			return nil
		})
	}()
	<-entered
	return func() {
		close(done)
		if err := <-errc; err != nil {
			t.Errorf("holding write: %v", err)
		}
	}
}

// waitQueued returns once n writes wait in the writer's queue.
func waitQueued(s *Store, n int) {
	for len(s.w.ops) < n {
		runtime.Gosched()
	}
}

// sendAll starts one write per fn and returns a wait for their outcomes,
// by key.
func sendAll(s *Store, fns map[string]func(*tx) error) func() map[string]error {
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		out = map[string]error{}
	)
	for key, fn := range fns {
		wg.Go(func() {
			err := s.w.write(context.Background(), fn)
			mu.Lock()
			out[key] = err
			mu.Unlock()
		})
	}
	return func() map[string]error {
		wg.Wait()
		return out
	}
}

func TestWriter(t *testing.T) {
	t.Parallel()

	t.Run("WaitingWritesShareOneCommit", func(t *testing.T) {
		t.Parallel()
		s, _ := openTest(t)
		scratch(t, s)
		release := hold(t, s)
		before := s.WriteStats()
		fns := map[string]func(*tx) error{}
		for i := range 30 {
			fns[fmt.Sprint(i)] = insert(fmt.Sprintf("k%02d", i))
		}
		wait := sendAll(s, fns)
		waitQueued(s, 30)
		release()
		for key, err := range wait() {
			if err != nil {
				t.Fatalf("write %s: %v", key, err)
			}
		}
		after := s.WriteStats()
		if groups, writes := after.Groups-before.Groups, after.Writes-before.Writes; groups != 1 || writes != 30 {
			t.Fatalf("%d writes in %d groups, want one group of 30", writes, groups)
		}
		if got := strings.Count(keys(t, s), ",") + 1; got != 30 {
			t.Fatalf("%d rows committed, want 30", got)
		}
	})

	t.Run("FailingWriteRollsBackAloneInItsGroup", func(t *testing.T) {
		t.Parallel()
		s, _ := openTest(t)
		scratch(t, s)
		release := hold(t, s)
		failure := errors.New("second thoughts")
		wait := sendAll(s, map[string]func(*tx) error{
			"a": insert("a"),
			"b": func(tx *tx) error {
				if err := insert("b")(tx); err != nil {
					return err
				}
				return failure
			},
			"dup": func(tx *tx) error {
				if err := insert("c")(tx); err != nil {
					return err
				}
				return insert("c")(tx)
			},
			"d": insert("d"),
		})
		waitQueued(s, 4)
		release()
		got := wait()
		if got["a"] != nil || got["d"] != nil || !errors.Is(got["b"], failure) || !isConflict(got["dup"]) {
			t.Fatalf("results %v, want a and d to succeed, b its own error, dup a conflict", got)
		}
		if k := keys(t, s); k != "a,d" {
			t.Fatalf("committed %q, want a,d", k)
		}
	})

	t.Run("FailedCommitFailsEveryCaller", func(t *testing.T) {
		t.Parallel()
		s, _ := openTest(t)
		scratch(t, s)
		release := hold(t, s)
		wait := sendAll(s, map[string]func(*tx) error{
			"fine": insert("fine"),
			"orphan": func(tx *tx) error { // a deferred key fails only at COMMIT
				_, err := tx.exec("INSERT INTO child (parent_id) VALUES (42)")
				return err
			},
		})
		waitQueued(s, 2)
		release()
		for key, err := range wait() {
			if err == nil || !strings.Contains(err.Error(), "commit") {
				t.Fatalf("write %s: %v, want the commit's error", key, err)
			}
		}
		if k := keys(t, s); k != "" {
			t.Fatalf("committed %q from a failed commit", k)
		}
		if err := s.w.write(t.Context(), insert("after")); err != nil {
			t.Fatalf("write after a failed commit: %v", err)
		}
	})

	t.Run("PanicReachesItsCallerAndWriterGoesOn", func(t *testing.T) {
		t.Parallel()
		s, _ := openTest(t)
		scratch(t, s)
		func() {
			defer func() {
				if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "boom") {
					t.Fatalf("recovered %v, want the write's panic", p)
				}
			}()
			_ = s.w.write(t.Context(), func(tx *tx) error {
				_ = insert("half")(tx)
				panic("boom")
			})
		}()
		if err := s.w.write(t.Context(), insert("after")); err != nil {
			t.Fatalf("write after a panic: %v", err)
		}
		if k := keys(t, s); k != "after" {
			t.Fatalf("committed %q, want only after", k)
		}
	})

	t.Run("CancelledBeforeTakenNeverRuns", func(t *testing.T) {
		t.Parallel()
		s, _ := openTest(t)
		scratch(t, s)
		release := hold(t, s)
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() { errc <- s.w.write(ctx, insert("late")) }()
		waitQueued(s, 1)
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("write = %v, want context.Canceled", err)
		}
		release()
		if err := s.w.write(t.Context(), insert("next")); err != nil {
			t.Fatalf("next write: %v", err)
		}
		if k := keys(t, s); k != "next" {
			t.Fatalf("committed %q, want only next", k)
		}
	})

	t.Run("CloseFinishesQueuedWritesThenRefuses", func(t *testing.T) {
		t.Parallel()
		s, path := openTest(t)
		scratch(t, s)
		release := hold(t, s)
		wait := sendAll(s, map[string]func(*tx) error{"queued": insert("queued")})
		waitQueued(s, 1)
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		release()
		if err := wait()["queued"]; err != nil {
			t.Fatalf("queued write: %v", err)
		}
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.w.write(t.Context(), insert("after")); verifyd.ErrorCode(err) != verifyd.EUNAVAILABLE {
			t.Fatalf("write after Close = %v, want EUNAVAILABLE", err)
		}
		if err := s.Ping(t.Context()); verifyd.ErrorCode(err) != verifyd.EUNAVAILABLE {
			t.Fatalf("Ping after Close = %v, want EUNAVAILABLE", err)
		}
		again, err := Open(t.Context(), path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer again.Close()
		if k := keys(t, again); k != "queued" {
			t.Fatalf("after reopening: %q, want the queued write", k)
		}
	})
}

// TestWriterDiskFullIsUnavailableAndRecovers: a full disk fails writes with
// EUNAVAILABLE (503, try again), not an internal error (500), and the
// writer takes writes again once there is room. It needs a small tmpfs, so
// root; it skips elsewhere.
func TestWriterDiskFullIsUnavailableAndRecovers(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	defer syscall.Unmount(dir, syscall.MNT_DETACH)
	s, err := Open(t.Context(), filepath.Join(dir, "verifyd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	scratch(t, s)
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for buf := make([]byte, 4096); ; {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	var full error
	for i := 0; i < 2000 && full == nil; i++ {
		full = s.w.write(t.Context(), insert(fmt.Sprintf("%04d-%s", i, strings.Repeat("x", 2000))))
	}
	if full == nil {
		t.Fatal("the disk never filled")
	}
	if code := verifyd.ErrorCode(full); code != verifyd.EUNAVAILABLE {
		t.Errorf("write on a full disk: code %q (%v), want %q", code, full, verifyd.EUNAVAILABLE)
	}
	if err := s.Ping(t.Context()); verifyd.ErrorCode(err) != verifyd.EUNAVAILABLE {
		t.Errorf("Ping on a full disk: %v, want EUNAVAILABLE (not ready)", err)
	}
	// A write that changes nothing (a claim that finds no message) commits
	// even on a full disk, and proves nothing.
	if err := s.w.write(t.Context(), func(t *tx) error {
		_, err := t.exec("UPDATE scratch SET k = k WHERE k = 'none'")
		return err
	}); err != nil {
		t.Fatalf("a write that changes nothing: %v", err)
	}
	if err := s.Ping(t.Context()); verifyd.ErrorCode(err) != verifyd.EUNAVAILABLE {
		t.Errorf("Ping on a full disk after a commit that changed nothing: %v, want EUNAVAILABLE", err)
	}
	if err := s.Ping(t.Context()); verifyd.ErrorCode(err) != verifyd.EUNAVAILABLE {
		t.Errorf("Ping again at once: %v, want EUNAVAILABLE without a probe", err)
	}
	os.Remove(filler)
	// Nothing else writes (a node out of its load balancer gets no
	// creates): Ping's own probe finds the room, at the next check after
	// probeEvery.
	s.lastProbe.Store(time.Now().Add(-probeEvery).UnixNano())
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping once there is room again: %v", err)
	}
	if err := s.w.write(t.Context(), insert("after")); err != nil {
		t.Errorf("write once there is room again: %v", err)
	}
}

// TestWriterBusyPastTimeoutIsUnavailable: another process (verifyd accounts
// create, migrate) holding the write lock past the busy timeout fails the
// write with EUNAVAILABLE, not an internal error. It waits out the timeout.
func TestWriterBusyPastTimeoutIsUnavailable(t *testing.T) {
	t.Parallel()
	s, path := openTest(t)
	scratch(t, s)
	conn, err := rawDB(t, path).Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	err = s.w.write(t.Context(), insert("mine"))
	if code := verifyd.ErrorCode(err); code != verifyd.EUNAVAILABLE {
		t.Fatalf("write while another process holds the lock: code %q (%v), want %q", code, err, verifyd.EUNAVAILABLE)
	}
	if err := s.Ping(t.Context()); verifyd.ErrorCode(err) != verifyd.EUNAVAILABLE {
		t.Errorf("Ping while writes are refused: %v, want EUNAVAILABLE (not ready)", err)
	}
	conn.ExecContext(context.Background(), "ROLLBACK")
	// Any commit proves the lock free again, one that changes nothing (a
	// claim finding no message) too.
	if err := s.w.write(t.Context(), func(t *tx) error { return nil }); err != nil {
		t.Fatalf("write once the lock is free: %v", err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping once writes commit again: %v", err)
	}
}

// TestWriterPanicWithOpenRowsThenClose: a write that panics with rows open
// must not wedge the store; its rows are closed after it, so Close returns.
func TestWriterPanicWithOpenRowsThenClose(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "verifyd.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	scratch(t, s)
	for i := range 3 {
		if err := s.w.write(t.Context(), insert(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	func() {
		defer func() { recover() }()
		_ = s.w.write(t.Context(), func(tx *tx) error {
			rows, err := tx.query("SELECT k FROM scratch")
			if err != nil {
				return err
			}
			rows.Next()
			panic("boom") // a bug in a write, before its rows.Close
		})
	}()
	if err := s.w.write(t.Context(), insert("after")); err != nil {
		t.Errorf("write after the panic: %v", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs: the panicking write's rows hold the writer's connection")
	}
}
