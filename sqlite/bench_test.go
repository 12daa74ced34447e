package sqlite_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"verifyd"
	"verifyd/delivery"
	"verifyd/inbox"
	"verifyd/sqlite"
	"verifyd/storetest"
)

// BenchmarkCreateVerification measures durable creates (verification,
// message and four limit charges per create), one caller at a time and
// many at once. The gap between the two is the group commit: concurrent
// creates share an fsync, which writes/commit reports. The callers share
// the CPUs with the writer, so ns/op hides what a create costs the one
// writer goroutine, the bound of a server: writer-ns/op is that, and
// commit-ns/op the part of it in COMMIT.
func BenchmarkCreateVerification(b *testing.B) {
	for _, bc := range []struct {
		name        string
		parallelism int // callers per GOMAXPROCS; 0 for one caller
	}{
		{"Serial", 0},
		{"Parallel64", 32},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := openTemp(b)
			a := &verifyd.Account{Name: "bench", Created: time.Unix(0, 0)}
			if err := s.CreateAccount(b.Context(), a); err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			create := func() {
				n := next.Add(1)
				if err := createOne(b, s, a, n); err != nil {
					b.Error(err)
				}
			}
			before := s.WriteStats()
			b.ResetTimer()
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
			b.StopTimer()
			after := s.WriteStats()
			if groups := after.Groups - before.Groups; groups > 0 {
				writes := float64(after.Writes - before.Writes)
				b.ReportMetric(writes/float64(groups), "writes/commit")
				b.ReportMetric(float64(after.Busy-before.Busy)/writes, "writer-ns/op")
				b.ReportMetric(float64(after.Committing-before.Committing)/writes, "commit-ns/op")
			}
		})
	}
}

// createOne stores the n-th verification of a, charged to limits on its
// own number, so every create writes what a real one writes. Ids and
// numbers are scattered like real ones (random UUIDs, numbers from
// everywhere), which decides how many pages a commit writes.
func createOne(b *testing.B, s *sqlite.Store, a *verifyd.Account, n int64) error {
	return createAt(b, s, a, n, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n)*time.Millisecond))
}

// createAt is createOne with the verification created at now.
func createAt(b *testing.B, s *sqlite.Store, a *verifyd.Account, n int64, now time.Time) error {
	return createWith(b, s, a, n, now, true)
}

// createWith is createAt, charged to no limit at all unless limits.
func createWith(b *testing.B, s *sqlite.Store, a *verifyd.Account, n int64, now time.Time, limits bool) error {
	h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(n)))
	id := storetest.RandomID(int(n))
	number := fmt.Sprintf("4477%08d", binary.BigEndian.Uint32(h[16:20])%100_000_000)
	v := &verifyd.Verification{
		ID: id, AccountID: a.ID, PhoneNumber: number, Country: "GB",
		NumberStatus: verifyd.NumberOn, State: verifyd.StatePending, CodeMAC: h[:],
		MaxAttempts: 5, Created: now, ValidUntil: now.Add(10 * time.Minute), Updated: now,
	}
	m := &verifyd.Message{RequestID: v.ID, AccountID: a.ID, To: number, From: "bench",
		Sealed: make([]byte, 80), NextAttempt: now, Deadline: v.ValidUntil, Created: now}
	if !limits {
		return s.CreateVerification(b.Context(), v, m, nil)
	}
	roomy := verifyd.Rate{Count: 1_000_000_000, Per: 24 * time.Hour}
	charged := []verifyd.Limit{
		{Name: "number", Key: "1:number:" + number, Rate: roomy},
		{Name: "numberDaily", Key: "1:numberDaily:" + number, Rate: roomy},
		{Name: "prefix", Key: "1:prefix:" + number[:len(number)-4], Rate: roomy},
		{Name: "country", Key: "1:country:GB", Rate: roomy},
	}
	return s.CreateVerification(b.Context(), v, m, charged)
}

// BenchmarkUpdateVerification measures validates (a wrong code on a
// pending request: read, decide, write back) from 64 callers at once.
func BenchmarkUpdateVerification(b *testing.B) {
	s := openTemp(b)
	a := &verifyd.Account{Name: "bench", Created: time.Unix(0, 0)}
	if err := s.CreateAccount(b.Context(), a); err != nil {
		b.Fatal(err)
	}
	const stored = 2000
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range 64 { // seed many at a time, so that they share commits
		wg.Go(func() {
			for n := next.Add(1); n <= stored; n = next.Add(1) {
				if err := createOne(b, s, a, n); err != nil {
					b.Error(err)
				}
			}
		})
	}
	wg.Wait()
	ids := make([]string, stored)
	for n := range stored {
		ids[n] = storetest.RandomID(n + 1)
	}
	now := time.Date(2030, 1, 1, 0, 0, 1, 0, time.UTC)
	next.Store(0)
	b.SetParallelism(32)
	before, cpu := s.WriteStats(), cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := ids[next.Add(1)%stored]
			if _, err := s.UpdateVerification(b.Context(), a.ID, id, func(v *verifyd.Verification) error {
				v.MaxAttempts = 1 << 30 // stay pending however often it is hit
				v.Attempt(now, false)
				return nil
			}); err != nil {
				b.Error(err)
			}
		}
	})
	b.StopTimer()
	after := s.WriteStats()
	b.ReportMetric(float64(cpuTime()-cpu)/1e3/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(after.Busy-before.Busy)/1e3/float64(b.N), "writer-µs/op")
	b.ReportMetric(float64(after.Writes-before.Writes)/float64(after.Groups-before.Groups), "writes/commit")
}

// BenchmarkDevPipeline measures whole verifications through the store as
// the dev server runs them: 64 callers create, a delivery worker claims,
// the inbox sender keeps each message and records its receipt, and the
// worker finishes the batch. One op is one verification, counted once its
// hand-over is recorded; writes/verification is what the writer ran for
// it.
func BenchmarkDevPipeline(b *testing.B) {
	for _, bc := range []struct {
		name   string
		limits bool
	}{
		{"Limits", true},
		{"NoLimits", false}, // as verifyd-bench runs it: limits=off
	} {
		b.Run(bc.name, func(b *testing.B) { benchDevPipeline(b, bc.limits) })
	}
}

func benchDevPipeline(b *testing.B, limits bool) {
	s := openTemp(b)
	a := &verifyd.Account{Name: "bench", Created: time.Unix(0, 0)}
	if err := s.CreateAccount(b.Context(), a); err != nil {
		b.Fatal(err)
	}
	counted := &countingStore{MessageStore: s, finished: make(chan int, 1024)}
	w := delivery.New(delivery.Config{
		Store:  counted,
		Sender: inbox.New(s, plainText{}, time.Now),
		Opener: plainText{},
		Now:    time.Now,
	})
	ctx, stop := context.WithCancel(b.Context())
	ran := make(chan struct{})
	go func() {
		w.Run(ctx)
		close(ran)
	}()
	defer func() {
		stop()
		<-ran
	}()

	var next atomic.Int64
	before, cpu, claims := s.WriteStats(), cpuTime(), counted.claims.Load()
	b.ResetTimer()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := createWith(b, s, a, next.Add(1), time.Now(), limits); err != nil {
				b.Error(err)
			}
			w.Wake()
		}
	})
	for done := 0; done < b.N; {
		select {
		case n := <-counted.finished:
			done += n
		case <-time.After(10 * time.Second):
			b.Fatalf("%d of %d messages handed over after 10s", done, b.N)
		}
	}
	b.StopTimer()
	after := s.WriteStats()
	b.ReportMetric(float64(cpuTime()-cpu)/1e3/float64(b.N), "cpu-µs/verification")
	b.ReportMetric(float64(after.Busy-before.Busy)/1e3/float64(b.N), "writer-µs/verification")
	b.ReportMetric(float64(after.Committing-before.Committing)/1e3/float64(b.N), "commit-µs/verification")
	b.ReportMetric(float64(after.Writes-before.Writes)/float64(b.N), "writes/verification")
	b.ReportMetric(float64(after.Writes-before.Writes)/float64(after.Groups-before.Groups), "writes/commit")
	b.ReportMetric(float64(b.N)/float64(counted.claims.Load()-claims), "verifications/claim")
}

// BenchmarkDevDrain measures a backlog worked off after a restart: b.N
// queued messages, no more creates and so no wakes, the delivery worker and
// the inbox sender of the dev server with its defaults.
func BenchmarkDevDrain(b *testing.B) {
	s := openTemp(b)
	a := &verifyd.Account{Name: "bench", Created: time.Unix(0, 0)}
	if err := s.CreateAccount(b.Context(), a); err != nil {
		b.Fatal(err)
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range 64 {
		wg.Go(func() {
			for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
				if err := createAt(b, s, a, n, time.Now()); err != nil {
					b.Error(err)
				}
			}
		})
	}
	wg.Wait()
	counted := &countingStore{MessageStore: s, finished: make(chan int, 1024)}
	w := delivery.New(delivery.Config{
		Store:  counted,
		Sender: inbox.New(s, plainText{}, time.Now),
		Opener: plainText{},
		Now:    time.Now,
	})
	ctx, stop := context.WithCancel(b.Context())
	ran := make(chan struct{})
	b.ResetTimer()
	go func() {
		w.Run(ctx)
		close(ran)
	}()
	defer func() {
		stop()
		<-ran
	}()
	for done := 0; done < b.N; {
		select {
		case n := <-counted.finished:
			done += n
		case <-time.After(10 * time.Second):
			b.Fatalf("%d of %d messages handed over after 10s", done, b.N)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/float64(counted.claims.Load()), "messages/claim")
}

// countingStore tells how many messages each FinishMessages handed over,
// and counts claims.
type countingStore struct {
	verifyd.MessageStore
	finished chan int
	claims   atomic.Int64
}

func (c *countingStore) ClaimMessages(ctx context.Context, now time.Time, lease time.Duration, max int) ([]*verifyd.Message, error) {
	c.claims.Add(1)
	return c.MessageStore.ClaimMessages(ctx, now, lease, max)
}

func (c *countingStore) FinishMessages(ctx context.Context, results []verifyd.MessageResult) error {
	if err := c.MessageStore.FinishMessages(ctx, results); err != nil {
		return err
	}
	n := 0
	for _, r := range results {
		if r.State == verifyd.DeliveryDelivered { // the inbox delivers as it takes
			n++
		}
	}
	c.finished <- n
	return nil
}

// plainText seals nothing: the benchmark measures the store, not the AEAD.
type plainText struct{}

func (plainText) Seal(_ string, p []byte) []byte          { return bytes.Clone(p) }
func (plainText) Open(_ string, s []byte) ([]byte, error) { return bytes.Clone(s), nil }

// cpuTime is the CPU the process has used, user and system, which on a
// shared machine says more than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkListInboxMessages measures the dev inbox read that a developer's
// page, and the full-flow load, repeat while they wait for a code: one
// number's messages among many numbers'.
func BenchmarkListInboxMessages(b *testing.B) {
	s := openTemp(b)
	now := time.Now()
	var msgs []*verifyd.InboxMessage
	for i := range 20_000 {
		msgs = append(msgs, &verifyd.InboxMessage{RequestID: fmt.Sprint("r", i), To: fmt.Sprintf("4477%08d", i%5000),
			From: "bench", Sealed: make([]byte, 80), Created: now.Add(time.Duration(i) * time.Millisecond)})
	}
	if err := s.AddInboxMessages(b.Context(), msgs); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			to := fmt.Sprintf("4477%08d", next.Add(1)%5000)
			ms, err := s.ListInboxMessages(b.Context(), to, 50)
			if err != nil || len(ms) != 4 {
				b.Errorf("ListInboxMessages(%s) = %d messages, %v; want 4", to, len(ms), err)
			}
		}
	})
}

// queued returns a store holding b.N due messages, created by 64 writers
// at once, and a time at which they are all due.
func queued(b *testing.B) (*sqlite.Store, time.Time) {
	b.Helper()
	s := openTemp(b)
	a := &verifyd.Account{Name: "bench", Created: time.Unix(0, 0)}
	if err := s.CreateAccount(b.Context(), a); err != nil {
		b.Fatal(err)
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	created := time.Now()
	for range 64 {
		wg.Go(func() {
			for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
				if err := createWith(b, s, a, n, created, false); err != nil {
					b.Error(err)
				}
			}
		})
	}
	wg.Wait()
	return s, created.Add(time.Second)
}

// BenchmarkClaimMessages measures claims of 256 due messages at a time, as
// the delivery worker makes them while a queue drains; one op is one
// message claimed.
func BenchmarkClaimMessages(b *testing.B) {
	s, now := queued(b)
	b.ResetTimer()
	for claimed := 0; claimed < b.N; {
		ms, err := s.ClaimMessages(b.Context(), now, time.Minute, 256)
		if err != nil || len(ms) == 0 {
			b.Fatalf("claimed %d of %d, then %v", claimed, b.N, err)
		}
		claimed += len(ms)
	}
}

// BenchmarkFinishMessages measures recording hand-overs in batches of 256,
// as the delivery worker does: one op is one message finished Submitted
// with one part, whose receipt came first (as a fast carrier's may).
func BenchmarkFinishMessages(b *testing.B) {
	s, now := queued(b)
	var batches [][]verifyd.MessageResult
	for claimed := 0; claimed < b.N; {
		ms, err := s.ClaimMessages(b.Context(), now, time.Minute, 256)
		if err != nil || len(ms) == 0 {
			b.Fatalf("claimed %d of %d, then %v", claimed, b.N, err)
		}
		claimed += len(ms)
		batch := make([]verifyd.MessageResult, len(ms))
		for i, m := range ms {
			id := fmt.Sprintf("c-%d", claimed+i)
			if err := s.RecordReceipt(b.Context(), verifyd.Receipt{CarrierID: id, State: verifyd.DeliveryDelivered, At: now}); err != nil {
				b.Fatal(err)
			}
			batch[i] = verifyd.MessageResult{RequestID: m.RequestID, State: verifyd.DeliverySubmitted,
				CarrierIDs: []string{id}, At: now}
		}
		batches = append(batches, batch)
	}
	b.ResetTimer()
	for _, batch := range batches {
		if err := s.FinishMessages(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
}
