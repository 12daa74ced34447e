package postgres_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"verifyd"
)

// BenchmarkRecordReceipt measures receipts for two-part messages, 64 at
// once on two instances: after the submit (each part found Submitted), and
// before it (each kept for its carrier id), the two cases a carrier sends.
func BenchmarkRecordReceipt(b *testing.B) {
	for _, bc := range []struct {
		name  string
		early bool
	}{{"AfterSubmit", false}, {"BeforeSubmit", true}} {
		b.Run(bc.name, func(b *testing.B) {
			stores, a := benchStores(b, 2)
			messages := (b.N + 1) / 2
			at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			cid := func(i int) string { return fmt.Sprintf("%012d-%d", i/2, i%2) }
			if !bc.early {
				var results []verifyd.MessageResult
				for n := range messages {
					if err := createOne(b, stores[0], a, int64(n), false); err != nil {
						b.Fatal(err)
					}
					results = append(results, verifyd.MessageResult{RequestID: fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n),
						State: verifyd.DeliverySubmitted, CarrierIDs: []string{cid(2 * n), cid(2*n + 1)}, At: at})
				}
				for len(results) > 0 {
					ms, err := stores[0].ClaimMessages(b.Context(), at.Add(time.Duration(messages)*time.Millisecond), time.Hour, 1000)
					if err != nil || len(ms) == 0 {
						b.Fatalf("claimed %d (%v)", len(ms), err)
					}
					if err := stores[0].FinishMessages(b.Context(), results[:len(ms)]); err != nil {
						b.Fatal(err)
					}
					results = results[len(ms):]
				}
			}
			var next atomic.Int64
			b.ResetTimer()
			cpu := startCPU(b)
			b.SetParallelism(32)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(next.Add(1) - 1)
					if err := stores[i%2].RecordReceipt(b.Context(), verifyd.Receipt{CarrierID: cid(i),
						State: verifyd.DeliveryDelivered, At: at.Add(time.Minute)}); err != nil {
						b.Error(err)
					}
				}
			})
			b.StopTimer()
			cpu.report(b, b.N)
		})
	}
}
