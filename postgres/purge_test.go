package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

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

// A purge step that fails (here the verifications' delete, refused by a
// trigger) does not keep the other kinds of row from going: a step that
// failed at every purge would otherwise let every table grow.
func TestPurgeGoesOnPastAFailedStep(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	s := open(t, dsn)
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
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	for _, sql := range []string{
		`INSERT INTO verifications (id, account_id, phone_number, country, number_status, state, attempts, max_attempts,
			created, valid_until, updated) VALUES ('v', ` + fmt.Sprint(a.ID) + `, '447700900001', 'GB', 'On', 'Pending', 0, 5,
			` + fmt.Sprint(base.UnixMilli()) + `, ` + fmt.Sprint(base.UnixMilli()) + `, ` + fmt.Sprint(base.UnixMilli()) + `)`,
		`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$`,
		`CREATE TRIGGER refuse BEFORE DELETE ON verifications FOR EACH ROW EXECUTE FUNCTION refuse()`,
	} {
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if _, err := s.PurgeVerifications(t.Context(), base.Add(verifyd.DefaultRetention+time.Hour)); err == nil {
		t.Fatal("PurgeVerifications = nil error, want the refused delete's")
	}
	if got := countRows(t, dsn)["inbox_messages"]; got != 0 {
		t.Fatalf("%d inbox messages left after a purge whose verifications' step failed, want 0", got)
	}
}
