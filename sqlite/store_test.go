package sqlite_test

import (
	"path/filepath"
	"testing"

	"verifyd"
	"verifyd/sqlite"
	"verifyd/storetest"
)

// openTemp opens and migrates a store on a new file in a temp directory.
func openTemp(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "verifyd.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) verifyd.Store { return openTemp(t) })
}
