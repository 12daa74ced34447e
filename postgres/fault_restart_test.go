package postgres_test

import (
	"sync"
	"testing"
	"time"

	"verifyd"
	"verifyd/postgres"
	"verifyd/postgres/pgtest"
)

// TestRestartUnderLoadFromTwoInstances restarts the database (a fast
// shutdown, as pg_ctl restart -m fast) while two instances create and
// validate: while it is down every call fails EUNAVAILABLE and Ping says
// so; once it is back both recover by themselves, and no create either
// answered nil is lost, each with its message.
func TestRestartUnderLoadFromTwoInstances(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c, dsn := ownCluster(t, "restart_load")
	stores := [2]*postgres.Store{open(t, dsn, postgres.WithTimeout(2*time.Second)), open(t, dsn, postgres.WithTimeout(2*time.Second))}
	if err := stores[0].Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	a := createAccount(t, stores[0])
	limit := verifyd.Limit{Name: "account", Key: "1:account", Rate: verifyd.Rate{Count: 1 << 20, Per: time.Hour}}

	var (
		mu      sync.Mutex
		created []string
		next    int
		failed  int
		wg      sync.WaitGroup
		stop    = make(chan struct{})
	)
	for w := range 6 {
		s := stores[w%2]
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				next++
				n := next
				mu.Unlock()
				v, m := pending(a, n)
				var limits []verifyd.Limit
				if n%2 == 0 {
					limits = []verifyd.Limit{limit}
				}
				err := s.CreateVerification(ctx, v, m, limits)
				if err == nil {
					_, err = s.UpdateVerification(ctx, a.ID, v.ID, wrongCode)
				}
				mu.Lock()
				if err == nil {
					created = append(created, v.ID)
				} else {
					failed++
					if verifyd.ErrorCode(err) != verifyd.EUNAVAILABLE {
						t.Errorf("create or validate: %v, want nil or EUNAVAILABLE", err)
					}
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	if err := c.StopServer(); err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		if err := s.Ping(ctx); verifyd.ErrorCode(err) != verifyd.EUNAVAILABLE {
			t.Errorf("Ping of instance %d with the database down: %v, want EUNAVAILABLE", i, err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if err := c.StartServer(ctx); err != nil {
		t.Fatal(err)
	}
	// Both recover without a restart: each completes creates again.
	mu.Lock()
	before := len(created)
	mu.Unlock()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		n := len(created)
		mu.Unlock()
		if n >= before+20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart only %d more creates succeeded", n-before)
		}
	}
	close(stop)
	wg.Wait()
	for i, s := range stores {
		if err := s.Ping(ctx); err != nil {
			t.Errorf("Ping of instance %d after the restart: %v", i, err)
		}
	}
	t.Logf("%d creates and validates answered, %d failed", len(created), failed)

	conn := connect(t, dsn)
	var kept int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM verifications v JOIN messages m ON m.request_id = v.id
		WHERE v.id = ANY($1) AND v.attempts = 1`, created).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	if kept != len(created) {
		t.Errorf("%d creates (each validated once) were answered, %d are stored with their message and attempt", len(created), kept)
	}
	var halfDone int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM verifications v
		WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.request_id = v.id)`).Scan(&halfDone); err != nil {
		t.Fatal(err)
	}
	if halfDone > 0 {
		t.Errorf("%d verifications without their message", halfDone)
	}
}

// ownCluster starts a cluster of the test's own, for a test that stops,
// restarts or reconfigures its server, and returns it with the DSN of a
// new database on it.
func ownCluster(t *testing.T, database string) (*pgtest.Cluster, string) {
	t.Helper()
	c, err := pgtest.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	dsn, err := c.CreateDatabase(t.Context(), database)
	if err != nil {
		t.Fatal(err)
	}
	return c, dsn
}
