package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"verifyd"
	"verifyd/postgres"
	"verifyd/postgres/pgtest"
)

// TestCommitWhoseAnswerIsLostIsReportedCommitted: the session of a create
// (with limits, a transaction of two round trips ended by COMMIT; without,
// one pipeline) is ended after its commit is durable but before the answer
// reaches the instance.
// The create is stored, its message queued and its limit charged, so it
// must not answer 503: a client told 503 sends again, and the number gets
// two codes. (The server holds the answer back here by waiting for a
// synchronous standby that never comes; pg_terminate_backend then ends the
// session with the transaction committed, as a crash, a failover or a
// proxy can after any COMMIT.)
func TestCommitWhoseAnswerIsLostIsReportedCommitted(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c, dsn := ownCluster(t, "lost_commit")
	s := open(t, dsn+"&application_name=victim", postgres.WithTimeout(5*time.Second))
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	a := createAccount(t, s)
	limit := verifyd.Limit{Name: "number", Key: "1:number:447700900001", Rate: verifyd.Rate{Count: 5, Per: 10 * time.Minute}, Property: "to"}

	admin := holdCommits(t, c)

	for i, limits := range [][]verifyd.Limit{{limit}, nil} {
		v, m := pending(a, i+1)
		lostCommit(t, admin, func() error { return s.CreateVerification(ctx, v, m, limits) })
		if _, err := s.FindVerification(ctx, a.ID, v.ID); err != nil {
			t.Fatalf("FindVerification: %v (the COMMIT was durable before the session ended)", err)
		}
	}
	// A validate's write (one statement): a wrong code counted must be
	// answered, or the client is told 503 for an attempt it used up.
	v, _ := pending(a, 1)
	lostCommit(t, admin, func() error {
		_, err := s.UpdateVerification(ctx, a.ID, v.ID, wrongCode)
		return err
	})
	if got := attemptsOf(t, dsn, v.ID); got != 1 {
		t.Fatalf("%d attempts stored, want 1", got)
	}
}

// holdCommits makes every commit on c wait for a synchronous standby that
// never comes (the commit is durable, its answer held back), and returns
// an admin connection for ending the sessions that wait. releaseCommits
// lets commits be answered again.
func holdCommits(t *testing.T, c *pgtest.Cluster) *pgx.Conn {
	t.Helper()
	admin, err := pgx.Connect(t.Context(), c.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	setStandby(t, admin, "nobody")
	// The reload reaches every backend at its next command.
	time.Sleep(200 * time.Millisecond)
	return admin
}

// releaseCommits undoes holdCommits.
func releaseCommits(t *testing.T, admin *pgx.Conn) { setStandby(t, admin, "") }

func setStandby(t *testing.T, admin *pgx.Conn, name string) {
	t.Helper()
	if _, err := admin.Exec(t.Context(), "ALTER SYSTEM SET synchronous_standby_names = '"+name+"'"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(t.Context(), "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
}

// endHeldCommit waits for a session named victim to wait in its held
// commit, and ends it there, as a crash, a failover or a proxy can after
// any COMMIT.
func endHeldCommit(t *testing.T, admin *pgx.Conn) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var n int
		if err := admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = 'victim' AND wait_event = 'SyncRep'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no session waited in its commit")
		}
	}
}

// lostCommit runs call, whose COMMIT waits for a synchronous standby, ends
// its session while it waits, and fails the test unless call reports
// success.
func lostCommit(t *testing.T, admin *pgx.Conn, call func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	endHeldCommit(t, admin)
	if err := <-done; err != nil {
		t.Errorf("the call answered %v, yet its transaction is committed", err)
	}
}
