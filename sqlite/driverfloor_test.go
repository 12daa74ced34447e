package sqlite_test

import (
	"os"
	"strings"
	"testing"

	"verifyd/sqlite"
)

// The floor benchmark of sqlite/driverfloor, a module of its own, cannot
// import the writer's settings, so it writes them out again: it must run
// every one of them, or BENCHMARKS.md sets the targets against a floor of
// some other SQLite.
func TestDriverFloorRunsTheWritersPragmas(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("driverfloor/floor_test.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range sqlite.WriterPragmas {
		name, value, _ := strings.Cut(strings.TrimSuffix(p, ")"), "(")
		if stmt := `"PRAGMA ` + name + ` = ` + value + `"`; !strings.Contains(string(src), stmt) {
			t.Errorf("driverfloor does not run %s: want %s among its writerPragmas", p, stmt)
		}
	}
}
