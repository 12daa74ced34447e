package sqlite_test

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"verifyd"
	"verifyd/sqlite"
)

// BenchmarkCreateVerification measures durable creates (verification,
// message and four limit charges per create), one caller at a time and
// many at once. The gap between the two is the group commit: concurrent
// creates share an fsync, which writes/commit reports.
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
				b.ReportMetric(float64(after.Writes-before.Writes)/float64(groups), "writes/commit")
			}
		})
	}
}

// createOne stores the n-th verification of a, charged to limits on its
// own number, so every create writes what a real one writes. Ids and
// numbers are scattered like real ones (random UUIDs, numbers from
// everywhere), which decides how many pages a commit writes.
func createOne(b *testing.B, s *sqlite.Store, a *verifyd.Account, n int64) error {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Millisecond)
	h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(n)))
	id := fmt.Sprintf("%x-%x-4%x-8%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])[:36]
	number := fmt.Sprintf("4477%08d", binary.BigEndian.Uint32(h[16:20])%100_000_000)
	v := &verifyd.Verification{
		ID: id, AccountID: a.ID, PhoneNumber: number, Country: "GB",
		NumberStatus: verifyd.NumberOn, State: verifyd.StatePending, CodeMAC: h[:],
		MaxAttempts: 5, Created: now, ValidUntil: now.Add(10 * time.Minute), Updated: now,
	}
	m := &verifyd.Message{RequestID: v.ID, AccountID: a.ID, To: number, From: "bench",
		Sealed: make([]byte, 80), NextAttempt: now, Deadline: v.ValidUntil, Created: now}
	roomy := verifyd.Rate{Count: 1_000_000_000, Per: 24 * time.Hour}
	limits := []verifyd.Limit{
		{Name: "number", Key: "1:number:" + number, Rate: roomy},
		{Name: "numberDaily", Key: "1:numberDaily:" + number, Rate: roomy},
		{Name: "prefix", Key: "1:prefix:" + number[:len(number)-4], Rate: roomy},
		{Name: "country", Key: "1:country:GB", Rate: roomy},
	}
	return s.CreateVerification(b.Context(), v, m, limits)
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
		h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(n+1)))
		ids[n] = fmt.Sprintf("%x-%x-4%x-8%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])[:36]
	}
	now := time.Date(2030, 1, 1, 0, 0, 1, 0, time.UTC)
	next.Store(0)
	b.SetParallelism(32)
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
}
