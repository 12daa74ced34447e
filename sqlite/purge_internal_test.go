package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"modernc.org/sqlite"

	"verifyd"
)

// pagesRead is how many pages the writer's connection has read so far,
// from its cache or from the file.
func (s *Store) pagesRead(t *testing.T) int {
	t.Helper()
	var n int
	err := s.w.write(t.Context(), func(tx *tx) error {
		return tx.w.conn.Raw(func(dc any) error {
			for _, op := range []sqlite.DBStatusOp{sqlite.DBStatusCacheHit, sqlite.DBStatusCacheMiss} {
				cur, _, err := dc.(sqlite.DBStatus).Status(op, false)
				if err != nil {
					return err
				}
				n += cur
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPurgeOfRunsReadsEachRunOnce: the runs of wrong codes have no index
// on their last wrong code, so the purge walks an account's runs by key. A
// purge that looked for ended runs from the start of the account's runs at
// each write read the runs still going again at every write: work (and a
// hold on the writer) that grew with the square of the table. Pages read
// stand for the time, which a test on a shared machine cannot judge.
func TestPurgeOfRunsReadsEachRunOnce(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "verifyd.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := &verifyd.Account{Name: "shop", Created: time.Unix(0, 0)}
	if err := s.CreateAccount(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 3, 14, 9, 0, 0, 0, time.UTC)
	// Every third run ended a day ago; the others are still going.
	const runs = 150_000
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?)
		INSERT INTO number_failures (account_id, phone_number, failures, last)
		SELECT ?, '4477' || printf('%08d', n), 3, CASE WHEN n % 3 = 0 THEN ? ELSE ? END FROM g`,
		runs, a.ID, ms(now.Add(-48*time.Hour)), ms(now)); err != nil {
		t.Fatal(err)
	}

	before := s.pagesRead(t)
	if _, err := s.PurgeVerifications(t.Context(), now); err != nil {
		t.Fatal(err)
	}
	read := s.pagesRead(t) - before
	var left int
	if err := db.QueryRow("SELECT count(*) FROM number_failures").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != runs-runs/3 {
		t.Fatalf("%d runs left, want %d", left, runs-runs/3)
	}
	// A run takes a few dozen bytes: a walk in key order reads each page
	// of the table about once, well under one page per ten runs.
	if read > runs/10 {
		t.Fatalf("the purge read %d pages for %d runs: the runs still going were read again at every write", read, runs)
	}
	t.Logf("the purge read %d pages for %d runs", read, runs)
}
