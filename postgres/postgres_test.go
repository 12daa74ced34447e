package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"verifyd"
	"verifyd/postgres"
	"verifyd/postgres/pgtest"
)

// now is the tests' fixed clock.
func now() time.Time { return time.Date(2030, time.March, 14, 9, 26, 53, 589_000_000, time.UTC) }

// twoInstances opens two Stores (two pools, as two verifyd processes would)
// on one fresh database.
func twoInstances(t *testing.T) [2]*postgres.Store {
	t.Helper()
	dsn := newDatabase(t)
	return [2]*postgres.Store{open(t, dsn), open(t, dsn)}
}

// queueOnBoth creates the account and n pending verifications with their
// messages, on the two instances in turn.
func queueOnBoth(t *testing.T, stores [2]*postgres.Store, n int) *verifyd.Account {
	t.Helper()
	a := createAccount(t, stores[0])
	for i := range n {
		v, m := pending(a, i)
		if err := stores[i%2].CreateVerification(t.Context(), v, m, nil); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func createAccount(t *testing.T, s verifyd.Store) *verifyd.Account {
	t.Helper()
	a := &verifyd.Account{Name: "shop", SecretDigest: bytes.Repeat([]byte{1}, 32), Created: now()}
	if err := s.CreateAccount(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	return a
}

// pending builds the n-th pending verification of a and its message.
func pending(a *verifyd.Account, n int) (*verifyd.Verification, *verifyd.Message) {
	v := &verifyd.Verification{
		ID:           fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n),
		AccountID:    a.ID,
		PhoneNumber:  fmt.Sprintf("4477009%05d", n),
		Country:      "GB",
		NumberStatus: verifyd.NumberOn,
		State:        verifyd.StatePending,
		CodeMAC:      bytes.Repeat([]byte{byte(n)}, 32),
		MaxAttempts:  verifyd.DefaultMaxAttempts,
		Created:      now(),
		ValidUntil:   now().Add(verifyd.DefaultValidity),
		Updated:      now(),
	}
	m := &verifyd.Message{RequestID: v.ID, AccountID: a.ID, To: v.PhoneNumber, From: "verifyd",
		Sealed: []byte("sealed"), NextAttempt: now(), Deadline: v.ValidUntil, Created: now()}
	return v, m
}

// parallel runs fn(i) for i in [0, n) at once and waits for all.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

func TestTwoInstancesVerifyExactlyOnceAndCountEveryWrongCode(t *testing.T) {
	t.Parallel()
	stores := twoInstances(t)
	a := createAccount(t, stores[0])
	right, m := pending(a, 1)
	if err := stores[0].CreateVerification(t.Context(), right, m, nil); err != nil {
		t.Fatal(err)
	}
	wrong, m := pending(a, 2)
	wrong.MaxAttempts = 1000
	if err := stores[1].CreateVerification(t.Context(), wrong, m, nil); err != nil {
		t.Fatal(err)
	}
	finished := errors.New("finished")
	validate := func(s *postgres.Store, id string, match bool) verifyd.Status {
		var status verifyd.Status
		_, err := s.UpdateVerification(t.Context(), a.ID, id, func(v *verifyd.Verification) error {
			var ok bool
			if status, ok = v.Attempt(now().Add(time.Minute), match); !ok {
				return finished
			}
			return nil
		})
		if err != nil && !errors.Is(err, finished) {
			t.Errorf("UpdateVerification: %v", err)
		}
		if err != nil {
			return ""
		}
		return status
	}

	var (
		mu       sync.Mutex
		verified int
	)
	parallel(40, func(i int) {
		if validate(stores[i%2], right.ID, true) == verifyd.CodeVerified {
			mu.Lock()
			verified++
			mu.Unlock()
		}
	})
	parallel(60, func(i int) {
		if got := validate(stores[i%2], wrong.ID, false); got != verifyd.CodeNotVerified {
			t.Errorf("wrong code %d answered %q, want CodeNotVerified", i, got)
		}
	})
	if verified != 1 {
		t.Errorf("%d validates across two instances verified, want exactly 1", verified)
	}
	v, err := stores[1].FindVerification(t.Context(), a.ID, wrong.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Attempts != 60 {
		t.Errorf("%d wrong attempts counted, want 60", v.Attempts)
	}
}

func TestTwoInstancesClaimEachMessageOnce(t *testing.T) {
	t.Parallel()
	stores := twoInstances(t)
	const messages = 300
	queueOnBoth(t, stores, messages)
	var (
		mu     sync.Mutex
		counts = map[string]int{}
	)
	parallel(8, func(i int) {
		for {
			ms, err := stores[i%2].ClaimMessages(t.Context(), now(), time.Minute, 7)
			if err != nil {
				t.Error(err)
				return
			}
			if len(ms) == 0 {
				return
			}
			mu.Lock()
			for _, m := range ms {
				counts[m.RequestID]++
			}
			mu.Unlock()
		}
	})
	if len(counts) != messages {
		t.Errorf("%d distinct messages claimed, want %d", len(counts), messages)
	}
	for id, n := range counts {
		if n != 1 {
			t.Errorf("%s claimed %d times", id, n)
		}
	}
}

func TestTwoInstancesShareLimits(t *testing.T) {
	t.Parallel()
	// sends runs 40 creates of a at once, alternately on the two instances,
	// the i-th numbered first+i and charged to limits(i), and counts the
	// creates allowed and refused.
	sends := func(t *testing.T, stores [2]*postgres.Store, a *verifyd.Account, first int, limits func(i int) []verifyd.Limit) (allowed, refused int) {
		var mu sync.Mutex
		parallel(40, func(i int) {
			v, m := pending(a, first+i)
			err := stores[i%2].CreateVerification(t.Context(), v, m, limits(i))
			mu.Lock()
			defer mu.Unlock()
			switch verifyd.ErrorCode(err) {
			case "":
				allowed++
			case verifyd.EINVALID:
				refused++
			default:
				t.Errorf("send %d: %v", first+i, err)
			}
		})
		return allowed, refused
	}
	t.Run("NewBuckets", func(t *testing.T) {
		t.Parallel()
		stores := twoInstances(t)
		a := createAccount(t, stores[0])
		// Two buckets, charged in opposite orders by alternate sends: the
		// store must lock them in one order or the sends deadlock.
		x := verifyd.Limit{Name: "number", Key: "x", Rate: verifyd.Rate{Count: 10, Per: time.Hour}, Property: "to"}
		y := verifyd.Limit{Name: "prefix", Key: "y", Rate: verifyd.Rate{Count: 10, Per: time.Hour}, Property: "to"}
		allowed, refused := sends(t, stores, a, 0, func(i int) []verifyd.Limit {
			if i%2 == 1 {
				return []verifyd.Limit{y, x}
			}
			return []verifyd.Limit{x, y}
		})
		if allowed != 10 || refused != 30 {
			t.Errorf("%d sends allowed and %d refused across two instances, want 10 and 30", allowed, refused)
		}
	})
	t.Run("ExistingBuckets", func(t *testing.T) {
		t.Parallel()
		stores := twoInstances(t)
		a := createAccount(t, stores[0])
		// A bucket that exists already is not held by the insert that
		// would create it, only by the lock the store takes on it: a send
		// charges the number's bucket first, then 40 race for what is
		// left. A round on its own number may pass by luck, so there are
		// several.
		for round := range 10 {
			number := verifyd.Limit{Name: "number", Key: fmt.Sprintf("number-%d", round),
				Rate: verifyd.Rate{Count: 10, Per: time.Hour}, Property: "to"}
			only := func(int) []verifyd.Limit { return []verifyd.Limit{number} }
			first := round * 41
			v, m := pending(a, first)
			if err := stores[0].CreateVerification(t.Context(), v, m, only(0)); err != nil {
				t.Fatal(err)
			}
			allowed, refused := sends(t, stores, a, first+1, only)
			if allowed+1 != 10 || refused != 31 {
				t.Errorf("round %d: %d sends allowed and %d refused across two instances, want 10 (the first and 9 of "+
					"the 40) and 31", round, allowed+1, refused)
			}
		}
	})
}

func TestMigrationsRacingFromTwoInstancesApplyOnce(t *testing.T) {
	t.Parallel()
	dsn, err := cluster.CreateDatabase(t.Context(), "racing_migrations")
	if err != nil {
		t.Fatal(err)
	}
	stores := [2]*postgres.Store{open(t, dsn), open(t, dsn)}
	parallel(6, func(i int) {
		if err := stores[i%2].Migrate(t.Context()); err != nil {
			t.Errorf("Migrate: %v", err)
		}
	})
	conn := connect(t, dsn)
	var applied, distinct int
	if err := conn.QueryRow(t.Context(), "SELECT count(*), count(DISTINCT version) FROM schema_migrations").
		Scan(&applied, &distinct); err != nil {
		t.Fatal(err)
	}
	if applied == 0 || applied != distinct {
		t.Errorf("%d migrations recorded for %d versions, want each once", applied, distinct)
	}
	// The schema works.
	a := createAccount(t, stores[1])
	if _, err := stores[0].FindAccountByName(t.Context(), a.Name); err != nil {
		t.Error(err)
	}
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

func TestOpenRefusesCommitsThatAreNotDurable(t *testing.T) {
	t.Parallel()
	for i, tc := range []struct {
		setting string
		refused bool
	}{
		{"off", true},
		{"local", true},
		{"on", false},
		{"remote_write", false},
	} {
		t.Run(tc.setting, func(t *testing.T) {
			t.Parallel()
			name := fmt.Sprintf("sync_commit_%d", i)
			dsn, err := cluster.CreateDatabase(t.Context(), name)
			if err != nil {
				t.Fatal(err)
			}
			admin := connect(t, cluster.DSN("postgres"))
			if _, err := admin.Exec(t.Context(), "ALTER DATABASE "+name+" SET synchronous_commit = "+tc.setting); err != nil {
				t.Fatal(err)
			}
			s, err := postgres.Open(t.Context(), dsn)
			if err == nil {
				s.Close()
			}
			if !tc.refused {
				if err != nil {
					t.Fatalf("Open with synchronous_commit %s: %v", tc.setting, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "synchronous_commit is \""+tc.setting+"\"") {
				t.Fatalf("Open with synchronous_commit %s = %v, want a refusal naming the setting", tc.setting, err)
			}
		})
	}
}

func TestOpenRefusesSynchronousCommitOffInTheConnectionString(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	_, err := postgres.Open(t.Context(), dsn+"&options=-c%20synchronous_commit%3Doff")
	if err == nil || !strings.Contains(err.Error(), "synchronous_commit") {
		t.Fatalf("Open = %v, want a refusal", err)
	}
}

func TestTryMaintenanceRunsOnOneInstanceAtATime(t *testing.T) {
	t.Parallel()
	pair := twoInstances(t)
	a, b := pair[0], pair[1]
	ctx := t.Context()
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		ran, err := a.TryMaintenance(ctx, func(context.Context) error {
			close(inside)
			<-release
			return errors.New("maintenance failed")
		})
		if !ran {
			err = errors.New("first TryMaintenance did not run")
		}
		done <- err
	}()
	<-inside
	for _, s := range []*postgres.Store{a, b} {
		ran, err := s.TryMaintenance(ctx, func(context.Context) error {
			t.Error("maintenance ran twice at once")
			return nil
		})
		if ran || err != nil {
			t.Errorf("TryMaintenance while another runs = %v, %v; want false, nil", ran, err)
		}
	}
	close(release)
	if err := <-done; err == nil || err.Error() != "maintenance failed" {
		t.Fatalf("TryMaintenance returned %v, want fn's error", err)
	}
	// fn's failure released the lock all the same.
	ran, err := b.TryMaintenance(ctx, func(context.Context) error { return nil })
	if !ran || err != nil {
		t.Fatalf("TryMaintenance after the first finished = %v, %v; want true, nil", ran, err)
	}
}

// The outage tests stop and restart a cluster of their own (the shared one
// serves the tests running beside them), one after the other.
func TestOutage(t *testing.T) {
	t.Parallel()
	c, err := pgtest.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	t.Run("DownIsUnavailableThenRecovers", func(t *testing.T) { testDownIsUnavailableThenRecovers(t, c) })
	t.Run("RestartBehindIdleConnectionsFailsOneCallAtMost", func(t *testing.T) {
		testRestartBehindIdleConnections(t, c)
	})
}

func testDownIsUnavailableThenRecovers(t *testing.T, c *pgtest.Cluster) {
	ctx := t.Context()
	dsn, err := c.CreateDatabase(ctx, "outage")
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 2 * time.Second
	s := open(t, dsn, postgres.WithTimeout(timeout))
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	a := createAccount(t, s)
	v, m := pending(a, 1)
	if err := s.CreateVerification(ctx, v, m, nil); err != nil {
		t.Fatal(err)
	}

	if err := c.StopServer(); err != nil {
		t.Fatal(err)
	}
	// Each call answers EUNAVAILABLE, and within its timeout (plus slack for
	// a loaded machine), never a hang.
	for name, call := range map[string]func() error{
		"Ping": func() error { return s.Ping(ctx) },
		"FindVerification": func() error {
			_, err := s.FindVerification(ctx, a.ID, v.ID)
			return err
		},
		"CreateVerification": func() error {
			v, m := pending(a, 2)
			return s.CreateVerification(ctx, v, m, []verifyd.Limit{{Key: "k", Rate: verifyd.Rate{Count: 1, Per: time.Hour}}})
		},
		"UpdateVerification": func() error {
			_, err := s.UpdateVerification(ctx, a.ID, v.ID, func(*verifyd.Verification) error { return nil })
			return err
		},
	} {
		start := time.Now()
		err := call()
		var e *verifyd.Error
		if !errors.As(err, &e) || e.Code != verifyd.EUNAVAILABLE || e.Message != "database unavailable" {
			t.Errorf("%s with the database down = %v, want EUNAVAILABLE", name, err)
		}
		if took := time.Since(start); took > timeout+3*time.Second {
			t.Errorf("%s took %v with the database down, want it bounded by the %v timeout", name, took, timeout)
		}
	}

	if err := c.StartServer(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after the database came back: %v", err)
	}
	got, err := s.FindVerification(ctx, a.ID, v.ID)
	if err != nil || got.ID != v.ID {
		t.Fatalf("FindVerification after the database came back = %v, %v", got, err)
	}
}

// A database that restarts while connections sit idle in the pool: the
// first call after it may find a dead connection, but that resets the pool
// and the next call works.
func testRestartBehindIdleConnections(t *testing.T, c *pgtest.Cluster) {
	ctx := t.Context()
	dsn, err := c.CreateDatabase(ctx, "restart")
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, dsn, postgres.WithTimeout(2*time.Second))
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// Fill the pool with idle connections.
	parallel(4, func(int) {
		if _, err := s.ListAccounts(ctx); err != nil {
			t.Error(err)
		}
	})
	if err := c.StopServer(); err != nil {
		t.Fatal(err)
	}
	if err := c.StartServer(ctx); err != nil {
		t.Fatal(err)
	}
	failures := 0
	for range 2 {
		if _, err := s.ListAccounts(ctx); err != nil {
			if verifyd.ErrorCode(err) != verifyd.EUNAVAILABLE {
				t.Fatalf("ListAccounts on a stale connection = %v, want EUNAVAILABLE", err)
			}
			failures++
		}
	}
	if failures > 1 {
		t.Fatalf("%d calls failed after the restart, want at most the first", failures)
	}
	if _, err := s.ListAccounts(ctx); err != nil {
		t.Fatalf("ListAccounts after recovery: %v", err)
	}
}

func TestOpenReadsCommittedWhateverTheDatabaseDefault(t *testing.T) {
	t.Parallel()
	dsn, err := cluster.CreateDatabase(t.Context(), "serializable")
	if err != nil {
		t.Fatal(err)
	}
	admin := connect(t, cluster.DSN("postgres"))
	if _, err := admin.Exec(t.Context(), "ALTER DATABASE serializable SET default_transaction_isolation = 'serializable'"); err != nil {
		t.Fatal(err)
	}
	s := open(t, dsn)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := createAccount(t, s)
	v, m := pending(a, 1)
	v.MaxAttempts = 100
	if err := s.CreateVerification(t.Context(), v, m, nil); err != nil {
		t.Fatal(err)
	}
	// Concurrent validates of one row would fail to serialize under
	// SERIALIZABLE; under READ COMMITTED with the row lock they all count.
	parallel(20, func(int) {
		if _, err := s.UpdateVerification(t.Context(), a.ID, v.ID, func(v *verifyd.Verification) error {
			v.Attempt(now().Add(time.Minute), false)
			return nil
		}); err != nil {
			t.Errorf("UpdateVerification: %v", err)
		}
	})
	got, err := s.FindVerification(t.Context(), a.ID, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Attempts != 20 {
		t.Fatalf("%d attempts counted, want 20", got.Attempts)
	}
}

func TestListInboxMessagesWithoutLimitListsAll(t *testing.T) {
	t.Parallel()
	s := open(t, newDatabase(t))
	var msgs []*verifyd.InboxMessage
	for i := range 3 {
		msgs = append(msgs, &verifyd.InboxMessage{RequestID: fmt.Sprint(i), To: "447700900001", Created: now().Add(time.Duration(i) * time.Second)})
	}
	if err := s.AddInboxMessages(t.Context(), msgs); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{0, -1} {
		got, err := s.ListInboxMessages(t.Context(), "", limit)
		if err != nil || len(got) != 3 || got[0].RequestID != "2" {
			t.Errorf("ListInboxMessages(limit %d) = %d messages, %v; want all 3, newest first", limit, len(got), err)
		}
	}
}

func TestClaimExpiresADeadHeadAndStillFillsTheClaim(t *testing.T) {
	t.Parallel()
	s := open(t, newDatabase(t))
	a := createAccount(t, s)
	// Ten messages past their deadline are first in line, two live ones
	// after them.
	for n := range 12 {
		v, m := pending(a, n)
		m.NextAttempt = now().Add(time.Duration(n) * time.Millisecond)
		if n < 10 {
			v.ValidUntil, m.Deadline = now().Add(time.Second), now().Add(time.Second)
		}
		if err := s.CreateVerification(t.Context(), v, m, nil); err != nil {
			t.Fatal(err)
		}
	}
	claimed, err := s.ClaimMessages(t.Context(), now().Add(time.Minute), time.Minute, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 2 {
		t.Fatalf("claimed %d messages, want the 2 live ones behind the expired head", len(claimed))
	}
	for n := range 10 {
		v, _ := pending(a, n)
		got, err := s.FindVerification(t.Context(), a.ID, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Delivery.State != verifyd.DeliveryExpired || got.Delivery.Error != "deadline passed" {
			t.Errorf("message %d: %+v, want Expired (deadline passed)", n, *got.Delivery)
		}
	}
}
