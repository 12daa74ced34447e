package postgres_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"verifyd"
	"verifyd/delivery"
	"verifyd/inbox"
	"verifyd/postgres"
	"verifyd/storetest"
)

// The benchmarks report, beside the time per operation, the CPU each side
// spent on it: db-µs/op is the PostgreSQL server's (every process of it),
// client-µs/op this test binary's (the stores and the callers). On a
// machine shared with other work the time moves from run to run; the CPU
// per operation holds, and says which side a change made cheaper.

// cpuMeter measures both sides' CPU from its start.
type cpuMeter struct{ db, client time.Duration }

// startCPU starts measuring after a checkpoint, so that no benchmark pays
// for writing out what the ones before it left in the buffers (a
// checkpoint falling in a run doubled its database CPU).
func startCPU(b *testing.B) cpuMeter {
	b.StopTimer()
	defer b.StartTimer()
	conn, err := pgx.Connect(b.Context(), cluster.DSN("postgres"))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(b.Context(), "CHECKPOINT"); err != nil {
		b.Fatal(err)
	}
	return cpuMeter{db: cluster.CPUTime(), client: clientCPU()}
}

// report adds the CPU per operation since start to b's results.
func (m cpuMeter) report(b *testing.B, ops int) {
	if ops <= 0 {
		return
	}
	b.ReportMetric(float64((cluster.CPUTime()-m.db).Microseconds())/float64(ops), "db-µs/op")
	b.ReportMetric(float64((clientCPU()-m.client).Microseconds())/float64(ops), "client-µs/op")
}

// clientCPU is this process's CPU time so far.
func clientCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCreateVerification measures durable creates (verification,
// message and, unless NoLimits, four limit charges per create, one of them
// the country bucket every create shares), one caller at a time and many at
// once, on one instance and on two sharing the database.
func BenchmarkCreateVerification(b *testing.B) {
	for _, bc := range []struct {
		name        string
		instances   int
		parallelism int // callers per GOMAXPROCS; 0 for one caller
		limits      bool
	}{
		{"Serial", 1, 0, true},
		{"Serial/NoLimits", 1, 0, false},
		{"Parallel64", 1, 32, true},
		{"Parallel64/NoLimits", 1, 32, false},
		{"TwoInstances/Parallel64", 2, 32, true},
		{"TwoInstances/Parallel64/NoLimits", 2, 32, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			stores, a := benchStores(b, bc.instances)
			var next atomic.Int64
			create := func() {
				n := next.Add(1)
				if err := createOne(b, stores[n%int64(len(stores))], a, n, bc.limits); err != nil {
					b.Error(err)
				}
			}
			b.ResetTimer()
			cpu := startCPU(b)
			if bc.parallelism == 0 {
				for b.Loop() {
					create()
				}
			} else {
				b.SetParallelism(bc.parallelism)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						create()
					}
				})
			}
			cpu.report(b, b.N)
		})
	}
}

// createOne stores the n-th verification of a, charged (with limits) to
// limits on its own number, its prefix and its country, as a real create is.
func createOne(b *testing.B, s *postgres.Store, a *verifyd.Account, n int64, withLimits bool) error {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Millisecond)
	number := fmt.Sprintf("4477%08d", n)
	v := &verifyd.Verification{
		ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n), AccountID: a.ID, PhoneNumber: number, Country: "GB",
		NumberStatus: verifyd.NumberOn, State: verifyd.StatePending, CodeMAC: make([]byte, 32),
		MaxAttempts: 5, Created: now, ValidUntil: now.Add(10 * time.Minute), Updated: now,
	}
	m := &verifyd.Message{RequestID: v.ID, AccountID: a.ID, To: number, From: "bench",
		Sealed: make([]byte, 80), NextAttempt: now, Deadline: v.ValidUntil, Created: now}
	var limits []verifyd.Limit
	if withLimits {
		roomy := verifyd.Rate{Count: 1_000_000_000, Per: 24 * time.Hour}
		limits = []verifyd.Limit{
			{Name: "number", Key: "1:number:" + number, Rate: verifyd.DefaultRates["number"]},
			{Name: "numberDaily", Key: "1:numberDaily:" + number, Rate: verifyd.DefaultRates["numberDaily"]},
			{Name: "prefix", Key: "1:prefix:" + number[:len(number)-4], Rate: roomy},
			{Name: "country", Key: "1:country:GB", Rate: roomy},
		}
	}
	return s.CreateVerification(b.Context(), v, m, limits)
}

// BenchmarkUpdateVerification measures validates (a wrong code, so each is
// a write), 64 at once, each on its own verification, on one instance and
// on two sharing the database.
func BenchmarkUpdateVerification(b *testing.B) {
	for _, bc := range []struct {
		name      string
		instances int
	}{
		{"Parallel64", 1},
		{"TwoInstances/Parallel64", 2},
	} {
		b.Run(bc.name, func(b *testing.B) {
			stores, a := benchStores(b, bc.instances)
			const verifications = 1000
			for n := range int64(verifications) {
				if err := createOne(b, stores[0], a, n, false); err != nil {
					b.Fatal(err)
				}
			}
			at := time.Date(2030, 1, 1, 0, 1, 0, 0, time.UTC)
			var next atomic.Int64
			b.ResetTimer()
			defer startCPU(b).report(b, b.N)
			b.SetParallelism(32)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := next.Add(1)
					id := n % verifications
					_, err := stores[n%int64(len(stores))].UpdateVerification(b.Context(), a.ID,
						fmt.Sprintf("%08x-0000-4000-8000-%012x", id, id),
						func(v *verifyd.Verification) error {
							v.Attempts++ // never locks: each stays Pending
							v.Updated = at
							return nil
						})
					if err != nil {
						b.Error(err)
					}
				}
			})
		})
	}
}

// BenchmarkDelivery measures the outbox as two verifyd instances with the
// dev inbox sender work it, sharing the database: 64 callers create
// verifications (no limits), each waking its instance's delivery worker,
// which claims, adds to the inbox (one call per message, as inbox.Sender
// does), and finishes the messages Delivered. An operation is
// one verification created and delivered: the timer stops once every
// message is Delivered.
func BenchmarkDelivery(b *testing.B) {
	dsn := newDatabase(b)
	a := &verifyd.Account{Name: "bench", Created: time.Unix(0, 0)}
	var (
		stores  [2]*postgres.Store
		workers [2]*delivery.Worker
		wg      sync.WaitGroup
	)
	ctx, stop := context.WithCancel(context.Background())
	defer func() {
		stop()
		wg.Wait()
	}()
	for i := range stores {
		s := open(b, dsn, postgres.WithTimeout(time.Minute))
		stores[i] = s
		workers[i] = delivery.New(delivery.Config{
			Store:  s,
			Sender: inbox.New(s, plainText{}, time.Now),
			Opener: plainText{},
			Now:    time.Now,
		})
		wg.Go(func() { workers[i].Run(ctx) })
	}
	if err := stores[0].CreateAccount(b.Context(), a); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	b.ResetTimer()
	cpu := startCPU(b)
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			now := time.Now()
			number := fmt.Sprintf("4477%08d", n)
			v := &verifyd.Verification{
				ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n), AccountID: a.ID, PhoneNumber: number, Country: "GB",
				NumberStatus: verifyd.NumberOn, State: verifyd.StatePending, CodeMAC: make([]byte, 32),
				MaxAttempts: 5, Created: now, ValidUntil: now.Add(10 * time.Minute), Updated: now,
			}
			m := &verifyd.Message{RequestID: v.ID, AccountID: a.ID, To: number, From: "bench",
				Sealed: []byte("Your code is 123456"), NextAttempt: now, Deadline: v.ValidUntil, Created: now}
			if err := stores[n%2].CreateVerification(b.Context(), v, m, nil); err != nil {
				b.Error(err)
				continue
			}
			workers[n%2].Wake()
		}
	})
	waitDelivered(b, dsn, b.N)
	b.StopTimer()
	cpu.report(b, b.N)
}

// benchStores opens n Stores on one fresh database, as n verifyd instances,
// with the benchmark account.
func benchStores(b *testing.B, n int) ([]*postgres.Store, *verifyd.Account) {
	b.Helper()
	dsn := newDatabase(b)
	stores := make([]*postgres.Store, n)
	for i := range stores {
		stores[i] = open(b, dsn, postgres.WithTimeout(time.Minute))
	}
	a := &verifyd.Account{Name: "bench", Created: time.Unix(0, 0)}
	if err := stores[0].CreateAccount(b.Context(), a); err != nil {
		b.Fatal(err)
	}
	return stores, a
}

// waitDelivered waits until n messages are Delivered and none is waiting.
func waitDelivered(b *testing.B, dsn string, n int) {
	conn, err := pgx.Connect(b.Context(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	deadline := time.Now().Add(time.Minute)
	for {
		var delivered, other int
		if err := conn.QueryRow(b.Context(), `SELECT count(*) FILTER (WHERE state = 'Delivered'), count(*) FILTER (WHERE state <> 'Delivered')
			FROM messages`).Scan(&delivered, &other); err != nil {
			b.Fatal(err)
		}
		switch {
		case delivered == n && other == 0:
			return
		case other == 0 && delivered > n, time.Now().After(deadline):
			b.Fatalf("%d messages delivered and %d not, want %d delivered", delivered, other, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// plainText seals nothing: the benchmarks measure the store, not the cipher.
type plainText struct{}

func (plainText) Seal(_ string, text []byte) []byte            { return text }
func (plainText) Open(_ string, sealed []byte) ([]byte, error) { return sealed, nil }

// BenchmarkDurableRowFloor measures the least a durable write of one row
// costs PostgreSQL, with none of verifyd: one session, 64 rows per
// transaction in one statement (arrays unnested, about a group of the
// store's at 64 connections), synchronous commits, no other session. Each
// row is keyed by a random UUID like a request id (API.md), so each lands
// on a random page of the primary key; SequentialID shows what that costs.
// A create writes at least two rows (the verification and its message),
// the inbox sender one more, and its delivery updates the message twice; a
// validate updates one row. db-µs/op (here per row) against the budget of
// a target is worked out in BENCHMARKS.md.
func BenchmarkDurableRowFloor(b *testing.B) {
	const (
		group = 64
		rows  = 100_000 // stored before an update run
	)
	payload := make([]byte, 120) // about a verification row's other columns
	for _, bc := range []struct {
		name string
		sql  string
		key  func(n int) string
		fill bool
	}{
		{"Insert/RandomID", `INSERT INTO rows (id, payload) SELECT * FROM unnest($1::text[], $2::bytea[])`, func(n int) string { return storetest.RandomID(n + rows) }, false},
		{"Insert/SequentialID", `INSERT INTO rows (id, payload) SELECT * FROM unnest($1::text[], $2::bytea[])`, func(n int) string { return fmt.Sprintf("%036d", n+rows) }, false},
		{"Update/RandomID", `UPDATE rows SET payload = u.payload FROM unnest($1::text[], $2::bytea[]) AS u (id, payload) WHERE rows.id = u.id`,
			func(n int) string { return storetest.RandomID(int(uint64(n) * 2654435761 % rows)) }, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			conn, err := pgx.Connect(b.Context(), newDatabase(b))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(b.Context(), `CREATE TABLE rows (id text PRIMARY KEY, payload bytea NOT NULL)`); err != nil {
				b.Fatal(err)
			}
			if bc.fill {
				ids := make([]string, rows)
				for i := range ids {
					ids[i] = storetest.RandomID(i)
				}
				if _, err := conn.Exec(b.Context(), `INSERT INTO rows (id, payload) SELECT id, $2 FROM unnest($1::text[]) AS id`, ids, payload); err != nil {
					b.Fatal(err)
				}
			}
			ids := make([]string, 0, group)
			payloads := make([][]byte, 0, group)
			b.ResetTimer()
			cpu := startCPU(b)
			for n := 0; n < b.N; {
				ids, payloads = ids[:0], payloads[:0]
				for end := min(n+group, b.N); n < end; n++ {
					// New bytes for each row, as a validate writes.
					ids = append(ids, bc.key(n))
					payloads = append(payloads, binary.BigEndian.AppendUint64(bytes.Clone(payload[8:]), uint64(n)))
				}
				if _, err := conn.Exec(b.Context(), bc.sql, ids, payloads); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b, b.N)
		})
	}
}
