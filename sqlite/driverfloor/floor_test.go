// Package driverfloor measures the least a durable write of one row costs
// through SQLite, with the pure-Go driver DESIGN.md chooses and, beside it,
// SQLite's own C library through cgo. It is a module of its own so that the
// cgo driver never enters verifyd's build: it exists to show whether the
// floor of the store, which sets the SQLite targets out of reach in
// BENCHMARKS.md, belongs to the driver or to SQLite on this machine.
//
//	cd sqlite/driverfloor && go test -run '^$' -bench . -benchtime 100000x
package driverfloor

import (
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers "sqlite3" (cgo)
	_ "modernc.org/sqlite"          // registers "sqlite" (pure Go)
)

// writerPragmas are the settings of verifyd's SQLite writer (writerPragmas
// in sqlite/sqlite.go), as statements both drivers run.
var writerPragmas = []string{"PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA foreign_keys = ON",
	"PRAGMA temp_store = MEMORY", "PRAGMA cache_size = -32768", "PRAGMA wal_autocheckpoint = 20000"}

// BenchmarkDurableRowFloor writes rows with the writer's settings and none
// of verifyd: one connection, one prepared statement, 64 rows per
// transaction (about the writer's group at 64 connections), no other
// goroutine. Each row is keyed by a random UUID like a request id (API.md),
// so each lands on a random page of the id index; SequentialID shows what
// that costs. A create writes at least two rows in its transaction (the
// verification and its message), the inbox sender one more, and its
// delivery updates the message twice; a validate updates one row.
// cpu-µs/row against the budget of a target is worked out in BENCHMARKS.md;
// sys-µs/row is the kernel's part of it (the WAL's writes and fsyncs).
func BenchmarkDurableRowFloor(b *testing.B) {
	const (
		group = 64
		rows  = 100_000 // stored before an update run
	)
	payload := make([]byte, 120) // about a verification row's other columns
	for _, driver := range []struct{ name, sql string }{{"modernc", "sqlite"}, {"cgo", "sqlite3"}} {
		for _, bc := range []struct {
			name string
			sql  string
			arg  func(n int) any
			fill bool
		}{
			{"Insert/RandomID", `INSERT INTO rows (id, payload) VALUES (?, ?)`, func(n int) any { return uuidOf(n) }, false},
			{"Insert/SequentialID", `INSERT INTO rows (id, payload) VALUES (?, ?)`, func(n int) any { return fmt.Sprintf("%036d", n) }, false},
			{"Update/RandomID", `UPDATE rows SET payload = ? WHERE id = ?`, func(n int) any { return uuidOf(int(uint64(n) * 2654435761 % rows)) }, true},
		} {
			b.Run(driver.name+"/"+bc.name, func(b *testing.B) {
				db := open(b, driver.sql)
				if bc.fill {
					fill(b, db, rows, payload)
				}
				write := func(st *sql.Stmt, n int) error {
					if bc.fill {
						// SQLite leaves a page clean when a row is
						// rewritten with the bytes it has: each update
						// writes new ones, as a validate does.
						p := binary.BigEndian.AppendUint64(payload[:0:0], uint64(n))
						_, err := st.Exec(append(p, payload[8:]...), bc.arg(n))
						return err
					}
					_, err := st.Exec(bc.arg(n+rows), payload)
					return err
				}
				user, sys := cpuTime()
				b.ResetTimer()
				for n := 0; n < b.N; {
					tx, err := db.Begin()
					if err != nil {
						b.Fatal(err)
					}
					st, err := tx.Prepare(bc.sql)
					if err != nil {
						b.Fatal(err)
					}
					for end := min(n+group, b.N); n < end; n++ {
						if err := write(st, n); err != nil {
							b.Fatal(err)
						}
					}
					if err := tx.Commit(); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				user2, sys2 := cpuTime()
				b.ReportMetric(float64(user2-user+sys2-sys)/1e3/float64(b.N), "cpu-µs/row")
				b.ReportMetric(float64(sys2-sys)/1e3/float64(b.N), "sys-µs/row")
			})
		}
	}
}

// open opens a new database file with the writer's settings on one
// connection, with the table of the benchmark: a rowid and a unique text
// id, like verifyd's verifications.
func open(b *testing.B, driver string) *sql.DB {
	db, err := sql.Open(driver, filepath.Join(b.TempDir(), "floor.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	for _, p := range writerPragmas {
		if _, err := db.Exec(p); err != nil {
			b.Fatalf("%s: %v", p, err)
		}
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		b.Fatalf("journal_mode %q, %v", mode, err)
	}
	if _, err := db.Exec(`CREATE TABLE rows (vid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, payload BLOB NOT NULL) STRICT`); err != nil {
		b.Fatal(err)
	}
	return db
}

// fill stores n rows in one transaction.
func fill(b *testing.B, db *sql.DB, n int, payload []byte) {
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if _, err := tx.Exec(`INSERT INTO rows (id, payload) VALUES (?, ?)`, uuidOf(i), payload); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// uuidOf is the n-th of a fixed series of random-looking v4 UUIDs.
func uuidOf(n int) string {
	h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(n)))
	return fmt.Sprintf("%x-%x-4%x-8%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])[:36]
}

// cpuTime is the CPU the process has used, in user and in kernel mode,
// which on a shared machine says more than the wall clock.
func cpuTime() (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}
