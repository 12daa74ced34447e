package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"verifyd"
)

// base is the tests' fixed "now".
func base() time.Time { return time.Date(2030, time.March, 14, 9, 26, 53, 589_000_000, time.UTC) }

// rawDB opens the file beside the store, to look at what the interface
// does not show.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpen(t *testing.T) {
	t.Parallel()

	t.Run("ErrNotAFilePath", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"", ":memory:", "file:x.db?mode=memory", "x.db?_pragma=synchronous(OFF)"} {
			if s, err := Open(t.Context(), path); err == nil {
				s.Close()
				t.Errorf("Open(%q) = nil error, want a refusal", path)
			}
		}
	})

	for _, tc := range []struct{ name, pragmas, want string }{
		{"RefusesRollbackJournal", "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", "wal"},
		{"RefusesSynchronousNormal", "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", "FULL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := rawDB(t, filepath.Join(t.TempDir(), "x.db"))
			conn, err := db.Conn(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.ExecContext(t.Context(), tc.pragmas); err != nil {
				t.Fatal(err)
			}
			if err := checkDurable(t.Context(), conn); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("checkDurable = %v, want a refusal naming %s", err, tc.want)
			}
		})
	}

	t.Run("FileIsInWALMode", func(t *testing.T) {
		t.Parallel()
		_, path := openTest(t)
		var mode string
		if err := rawDB(t, path).QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
		}
	})

	// A 202 promises a durable commit: the writer's own connection, which
	// runs every commit, must be in WAL mode with synchronous=FULL (2).
	// Another connection cannot tell, since synchronous is per connection.
	t.Run("WriterIsDurable", func(t *testing.T) {
		t.Parallel()
		s, _ := openTest(t)
		var level int
		var mode string
		if err := s.WriterQueryRow(t.Context(), "PRAGMA synchronous", &level); err != nil || level != 2 {
			t.Fatalf("writer's synchronous = %d, %v; want 2 (FULL)", level, err)
		}
		if err := s.WriterQueryRow(t.Context(), "PRAGMA journal_mode", &mode); err != nil || mode != "wal" {
			t.Fatalf("writer's journal_mode = %q, %v; want wal", mode, err)
		}
	})
}

func TestMigrate(t *testing.T) {
	t.Parallel()

	t.Run("AgainChangesNothing", func(t *testing.T) {
		t.Parallel()
		s, path := openTest(t)
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		steps, err := loadMigrations(migrations)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := rawDB(t, path).QueryRow("SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != len(steps) {
			t.Fatalf("%d versions recorded (%v), want %d", n, err, len(steps))
		}
	})

	t.Run("TwoProcessesAtOnce", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "verifyd.db")
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				s, err := Open(t.Context(), path)
				if err != nil {
					t.Errorf("Open: %v", err)
					return
				}
				defer s.Close()
				if err := s.Migrate(t.Context()); err != nil {
					t.Errorf("Migrate: %v", err)
				}
			})
		}
		wg.Wait()
	})

	t.Run("ErrNewerSchema", func(t *testing.T) {
		t.Parallel()
		s, path := openTest(t)
		if _, err := rawDB(t, path).Exec("INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')"); err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(t.Context()); err == nil || !strings.Contains(err.Error(), "9999") {
			t.Fatalf("Migrate = %v, want a refusal naming version 9999", err)
		}
	})

	t.Run("FailingStepLeavesSchemaAsItWas", func(t *testing.T) {
		t.Parallel()
		s, path := openTest(t)
		steps, err := loadMigrations(migrations)
		if err != nil {
			t.Fatal(err)
		}
		next := steps[len(steps)-1].version + 1
		steps = append(steps,
			migration{version: next, name: "good", sql: "CREATE TABLE added (x INTEGER)"},
			migration{version: next + 1, name: "bad", sql: "CREATE TABLE broken ("},
		)
		if err := s.migrate(t.Context(), steps); err == nil || !strings.Contains(err.Error(), "bad") {
			t.Fatalf("migrate = %v, want the bad step's error", err)
		}
		var n int
		db := rawDB(t, path)
		if err := db.QueryRow("SELECT count(*) FROM sqlite_schema WHERE name = 'added'").Scan(&n); err != nil || n != 0 {
			t.Fatalf("table of the good step exists (%d, %v) after the bad step failed", n, err)
		}
		if err := db.QueryRow("SELECT count(*) FROM schema_migrations WHERE version >= ?", next).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d failed versions recorded (%v)", n, err)
		}
	})
}

// seed stores an account and n queued verifications created at base.
func seed(t *testing.T, s *Store, n int) *verifyd.Account {
	t.Helper()
	a := &verifyd.Account{Name: "shop", Created: base()}
	if err := s.CreateAccount(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		v, m := newVerification(a, i, base())
		if err := s.CreateVerification(t.Context(), v, m, nil); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// newVerification builds the i-th pending verification of a and its message.
func newVerification(a *verifyd.Account, i int, now time.Time) (*verifyd.Verification, *verifyd.Message) {
	id := requestID(i)
	v := &verifyd.Verification{ID: id, AccountID: a.ID, PhoneNumber: "447700900123", Country: "GB",
		NumberStatus: verifyd.NumberOn, State: verifyd.StatePending, CodeMAC: []byte("mac"),
		MaxAttempts: 100, Created: now, ValidUntil: now.Add(10 * time.Minute), Updated: now}
	m := &verifyd.Message{RequestID: id, AccountID: a.ID, To: v.PhoneNumber, From: "shop",
		Sealed: []byte("sealed"), NextAttempt: now, Deadline: v.ValidUntil, Created: now}
	return v, m
}

func requestID(i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i) }

func TestSealedTextWiped(t *testing.T) {
	t.Parallel()
	s, path := openTest(t)
	a := seed(t, s, 5)
	ctx := t.Context()
	if _, err := s.ClaimMessages(ctx, base(), time.Minute, 4); err != nil {
		t.Fatal(err)
	}
	at := base().Add(time.Second)
	if err := s.FinishMessages(ctx, []verifyd.MessageResult{
		{RequestID: requestID(1), State: verifyd.DeliverySubmitted, CarrierIDs: []string{"c1"}, At: at},
		{RequestID: requestID(2), State: verifyd.DeliveryFailed, Error: "rejected", At: at},
		{RequestID: requestID(3), State: verifyd.DeliveryQueued, NextAttempt: at, At: at},
		{RequestID: requestID(4), State: verifyd.DeliveryExpired, At: at},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateVerification(ctx, a.ID, requestID(5), func(v *verifyd.Verification) error {
		v.Cancel(at)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{requestID(1): false, requestID(2): false, requestID(3): true, requestID(4): false, requestID(5): false}
	rows, err := rawDB(t, path).Query("SELECT request_id, sealed IS NOT NULL FROM messages")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id   string
			kept bool
		)
		if err := rows.Scan(&id, &kept); err != nil {
			t.Fatal(err)
		}
		if kept != want[id] {
			t.Errorf("message %s keeps its text: %v, want %v", id, kept, want[id])
		}
	}
}

func TestExpiredAtClaimIsWiped(t *testing.T) {
	t.Parallel()
	s, path := openTest(t)
	seed(t, s, 1)
	if ms, err := s.ClaimMessages(t.Context(), base().Add(time.Hour), time.Minute, 10); err != nil || len(ms) != 0 {
		t.Fatalf("ClaimMessages = %v, %v; want nothing", ms, err)
	}
	var state string
	var wiped bool
	if err := rawDB(t, path).QueryRow("SELECT state, sealed IS NULL FROM messages").Scan(&state, &wiped); err != nil {
		t.Fatal(err)
	}
	if state != "Expired" || !wiped {
		t.Fatalf("message %s, wiped %v; want Expired and wiped", state, wiped)
	}
}

func TestPurgeTakesMessagesAndParts(t *testing.T) {
	t.Parallel()
	s, path := openTest(t)
	seed(t, s, 3)
	ctx := t.Context()
	if _, err := s.ClaimMessages(ctx, base(), time.Minute, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishMessages(ctx, []verifyd.MessageResult{
		{RequestID: requestID(1), State: verifyd.DeliverySubmitted, CarrierIDs: []string{"a", "b"}, At: base()},
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeVerifications(ctx, base().Add(verifyd.DefaultRetention+time.Second)); err != nil || n != 3 {
		t.Fatalf("PurgeVerifications = %d, %v; want 3", n, err)
	}
	db := rawDB(t, path)
	for _, table := range []string{"verifications", "messages", "message_parts"} {
		var n int
		if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d rows left in %s (%v)", n, table, err)
		}
	}
}

func TestPurgeDeletesInChunks(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	seed(t, s, purgeChunk+7)
	if n, err := s.PurgeVerifications(t.Context(), base().Add(verifyd.DefaultRetention+time.Second)); err != nil || n != purgeChunk+7 {
		t.Fatalf("PurgeVerifications = %d, %v; want %d", n, err, purgeChunk+7)
	}
}

func TestTimesKeepMilliseconds(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	a := seed(t, s, 0)
	v, m := newVerification(a, 1, base().Add(1500*time.Microsecond))
	if err := s.CreateVerification(t.Context(), v, m, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.FindVerification(t.Context(), a.ID, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := base().Add(time.Millisecond); !got.Created.Equal(want) || got.Created.Location() != time.UTC {
		t.Fatalf("Created = %v, want %v in UTC", got.Created, want)
	}
}

// Two stores on one file stand for two processes (a server and a
// command): each validate is atomic across both.
func TestTwoStoresCountAttemptsExactly(t *testing.T) {
	t.Parallel()
	s1, path := openTest(t)
	s2, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	a := seed(t, s1, 1)
	var wg sync.WaitGroup
	for i := range 40 {
		s := []*Store{s1, s2}[i%2]
		wg.Go(func() {
			if _, err := s.UpdateVerification(t.Context(), a.ID, requestID(1), func(v *verifyd.Verification) error {
				v.Attempt(base().Add(time.Second), false)
				return nil
			}); err != nil {
				t.Errorf("UpdateVerification: %v", err)
			}
		})
	}
	wg.Wait()
	v, err := s2.FindVerification(t.Context(), a.ID, requestID(1))
	if err != nil {
		t.Fatal(err)
	}
	if v.Attempts != 40 {
		t.Fatalf("%d attempts counted, want 40", v.Attempts)
	}
}

// The claim must read the due index, not scan every message.
func TestClaimUsesDueIndex(t *testing.T) {
	t.Parallel()
	_, path := openTest(t)
	rows, err := rawDB(t, path).Query("EXPLAIN QUERY PLAN "+dueSubquery, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if p := strings.Join(plan, "; "); !strings.Contains(p, "messages_due") || strings.Contains(p, "TEMP B-TREE") {
		t.Fatalf("plan %q, want the messages_due index and no sort", p)
	}
}

func TestPurgeWalksEveryBucket(t *testing.T) {
	t.Parallel()
	s, path := openTest(t)
	const buckets = 2*bucketScanChunk + 500
	err := s.w.write(t.Context(), func(tx *tx) error {
		for i := range buckets {
			tat := base().Add(time.Duration(i%2) * time.Hour) // every other one still running
			if _, err := tx.exec("INSERT INTO limit_buckets (key, tat) VALUES (?, ?)",
				storedKey(fmt.Sprintf("1:number:4477%08d", i)), ms(tat)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PurgeVerifications(t.Context(), base().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := rawDB(t, path).QueryRow("SELECT count(*) FROM limit_buckets WHERE tat > ?", ms(base().Add(time.Minute))).
		Scan(&left); err != nil || left != buckets/2 {
		t.Fatalf("%d running buckets left (%v), want %d", left, err, buckets/2)
	}
	if err := rawDB(t, path).QueryRow("SELECT count(*) FROM limit_buckets").Scan(&left); err != nil || left != buckets/2 {
		t.Fatalf("%d buckets left (%v), want only the %d running ones", left, err, buckets/2)
	}
}

func TestCheckpointerCopiesTheWAL(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	seed(t, s, 3)
	s.w.ckpt.due()
	for s.WriteStats().Checkpoints == 0 {
		runtime.Gosched()
	}
	if st := s.WriteStats(); st.CheckpointFailures != 0 {
		t.Fatalf("%d of %d checkpoints failed", st.CheckpointFailures, st.Checkpoints)
	}
}

// TestLimitBucketFromBeforeWindows: a bucket row an older verifyd wrote (its
// GCRA timestamp, no sends) refuses after the upgrade for as long as it did
// before, and is written in the new form by its next charge.
func TestLimitBucketFromBeforeWindows(t *testing.T) {
	t.Parallel()
	s, path := openTest(t)
	a := seed(t, s, 0)
	l := verifyd.Limit{Name: "number", Key: "1:number:447700900001", Rate: verifyd.Rate{Count: 5, Per: 10 * time.Minute}, Property: "to"}
	// Five sends at base left the old bucket's tat 10 minutes on; it let the
	// next one through at +2m.
	if _, err := rawDB(t, path).Exec("INSERT INTO limit_buckets (key, tat) VALUES (?, ?)",
		storedKey(l.Key), ms(base().Add(10*time.Minute))); err != nil {
		t.Fatal(err)
	}
	at := base().Add(time.Minute)
	v, m := newVerification(a, 1, at)
	var e *verifyd.Error
	if err := s.CreateVerification(t.Context(), v, m, []verifyd.Limit{l}); !errors.As(err, &e) || e.RetryAfter != time.Minute {
		t.Fatalf("a send at +1m: %v, want throttled for a minute", err)
	}
	at = base().Add(2 * time.Minute)
	v, m = newVerification(a, 2, at)
	if err := s.CreateVerification(t.Context(), v, m, []verifyd.Limit{l}); err != nil {
		t.Fatalf("a send at +2m: %v", err)
	}
	var sends []byte
	if err := rawDB(t, path).QueryRow("SELECT sends FROM limit_buckets WHERE key = ?", storedKey(l.Key)).Scan(&sends); err != nil {
		t.Fatal(err)
	}
	if b, err := verifyd.DecodeBucket(sends, time.Time{}); err != nil || b.Sends() != 5 {
		t.Fatalf("the bucket now keeps %v sends (%v), want the 4 it stood for and the new one", b.Sends(), err)
	}
}
