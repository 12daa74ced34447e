package postgres_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"verifyd"
	"verifyd/postgres"
)

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
			dsn := newDatabase(b)
			stores := make([]*postgres.Store, bc.instances)
			for i := range stores {
				stores[i] = open(b, dsn, postgres.WithTimeout(time.Minute))
			}
			a := &verifyd.Account{Name: "bench", Created: time.Unix(0, 0)}
			if err := stores[0].CreateAccount(b.Context(), a); err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			create := func() {
				n := next.Add(1)
				if err := createOne(b, stores[n%int64(len(stores))], a, n, bc.limits); err != nil {
					b.Error(err)
				}
			}
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
// a write), many at once, each on its own verification.
func BenchmarkUpdateVerification(b *testing.B) {
	s := open(b, newDatabase(b), postgres.WithTimeout(time.Minute))
	a := &verifyd.Account{Name: "bench", Created: time.Unix(0, 0)}
	if err := s.CreateAccount(b.Context(), a); err != nil {
		b.Fatal(err)
	}
	const verifications = 1000
	for n := range int64(verifications) {
		if err := createOne(b, s, a, n, false); err != nil {
			b.Fatal(err)
		}
	}
	at := time.Date(2030, 1, 1, 0, 1, 0, 0, time.UTC)
	var next atomic.Int64
	b.ResetTimer()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1) % verifications
			_, err := s.UpdateVerification(b.Context(), a.ID, fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n),
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
}
