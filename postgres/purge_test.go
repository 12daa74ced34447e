package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"verifyd"
	"verifyd/storetest"
)

// TestPurgeRowLife runs storetest.RunRowLife, counting rows through a
// connection of its own to the store's schema. Receipts kept before their
// carrier id was known are the message_parts rows without a request id.
func TestPurgeRowLife(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		dsns = map[verifyd.Store]string{}
	)
	newStore := func(t *testing.T) verifyd.Store {
		dsn := newSchema(t)
		s := open(t, dsn)
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		dsns[s] = dsn
		return s
	}
	storetest.RunRowLife(t, newStore, func(t *testing.T, s verifyd.Store) map[string]int {
		mu.Lock()
		dsn := dsns[s]
		mu.Unlock()
		return countRows(t, dsn)
	})
}

// newSchema makes a schema of the conformance database for one test,
// dropped when it ends, and returns the DSN of connections that use it.
func newSchema(t *testing.T) string {
	t.Helper()
	if _, err := shared(); err != nil {
		t.Fatalf("conformance database: %v", err)
	}
	schema := fmt.Sprintf("s_%d", databases.Add(1))
	dsn, err := cluster.CreateSchema(t.Context(), "conformance", schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cluster.DropSchema(context.Background(), "conformance", schema); err != nil {
			t.Error(err)
		}
	})
	return dsn
}

// countRows counts the rows of every table of the schema dsn uses.
func countRows(t *testing.T, dsn string) map[string]int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	rows, _ := conn.Query(t.Context(), "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, table := range tables {
		var n int
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[table] = n
	}
	var parts, orphans int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FILTER (WHERE request_id IS NOT NULL),
		count(*) FILTER (WHERE request_id IS NULL) FROM message_parts`).Scan(&parts, &orphans); err != nil {
		t.Fatal(err)
	}
	out["message_parts"], out["orphan_receipts"] = parts, orphans
	return out
}
