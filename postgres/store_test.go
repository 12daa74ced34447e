package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"verifyd"
	"verifyd/postgres"
	"verifyd/postgres/pgtest"
	"verifyd/storetest"
)

// cluster is this test binary's PostgreSQL, started by TestMain.
var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	pgtest.Main(m, func(c *pgtest.Cluster) { cluster = c })
}

// template is a migrated database that each test's database copies, which
// is quicker than migrating each.
var template = sync.OnceValue(func() error {
	ctx := context.Background()
	dsn, err := cluster.CreateDatabase(ctx, "migrated")
	if err != nil {
		return err
	}
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Migrate(ctx)
})

var databases atomic.Int64

// newDatabase returns the DSN of a fresh, migrated database of the test's
// own, dropped when the test ends.
func newDatabase(t testing.TB) string {
	t.Helper()
	if err := template(); err != nil {
		t.Fatalf("migrated template: %v", err)
	}
	name := fmt.Sprintf("test_%d", databases.Add(1))
	dsn, err := cluster.CloneDatabase(t.Context(), name, "migrated")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cluster.DropDatabase(context.Background(), name); err != nil {
			t.Error(err)
		}
	})
	return dsn
}

// open opens a Store on dsn, closed when the test ends.
func open(t testing.TB, dsn string, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// shared is the database that holds one schema per conformance subtest.
var shared = sync.OnceValues(func() (string, error) {
	return cluster.CreateDatabase(context.Background(), "conformance")
})

// newSchemaStore returns a migrated Store on a fresh schema of its own,
// dropped when the test ends. A schema isolates the tables as a database
// would, and takes about 50 ms to make and migrate where CREATE DATABASE
// takes about 250 ms (it copies and logs the whole template), which over
// the suite's 60-odd subtests on two cores is most of its run time.
func newSchemaStore(t *testing.T) verifyd.Store {
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
	s := open(t, dsn)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestStoreConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, newSchemaStore)
}
