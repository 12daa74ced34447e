package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"sync"
	"testing"

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
