package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"verifyd"
	"verifyd/sqlite"
	"verifyd/storetest"
)

// TestPurgeRowLife runs storetest.RunRowLife, counting rows through a
// connection of its own to the store's file.
func TestPurgeRowLife(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		paths = map[verifyd.Store]string{}
	)
	newStore := func(t *testing.T) verifyd.Store {
		path := filepath.Join(t.TempDir(), "verifyd.db")
		s, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		paths[s] = path
		return s
	}
	storetest.RunRowLife(t, newStore, func(t *testing.T, s verifyd.Store) map[string]int {
		mu.Lock()
		path := paths[s]
		mu.Unlock()
		return countRows(t, path)
	})
}

// countRows counts the rows of every table of the database at path.
func countRows(t *testing.T, path string) map[string]int {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT name FROM sqlite_master WHERE type = 'table'")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, table := range tables {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM "` + table + `"`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

// A purge step that fails (here the verifications' delete, refused by a
// trigger) does not keep the other kinds of row from going: a step that
// failed at every purge would otherwise let every table grow.
func TestPurgeGoesOnPastAFailedStep(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "verifyd.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2030, 3, 14, 9, 0, 0, 0, time.UTC)
	a := &verifyd.Account{Name: "shop", Created: base}
	if err := s.CreateAccount(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	old := &verifyd.InboxMessage{RequestID: "r", To: "447700900001", From: "x", Created: base}
	if err := s.AddInboxMessages(t.Context(), []*verifyd.InboxMessage{old}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO verifications (id, account_id, phone_number, country, number_status, state,
		attempts, max_attempts, created, valid_until, updated) VALUES ('v', ?, '447700900001', 'GB', 'On', 'Pending', 0, 5, ?, ?, ?)`,
		a.ID, base.UnixMilli(), base.UnixMilli(), base.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TRIGGER refuse BEFORE DELETE ON verifications BEGIN SELECT RAISE(ABORT, 'refused'); END`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PurgeVerifications(t.Context(), base.Add(verifyd.DefaultRetention+time.Hour)); err == nil {
		t.Fatal("PurgeVerifications = nil error, want the refused delete's")
	}
	if got := countRows(t, path)["inbox_messages"]; got != 0 {
		t.Fatalf("%d inbox messages left after a purge whose verifications' step failed, want 0", got)
	}
}
