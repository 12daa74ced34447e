package smpp_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"verifyd"
	"verifyd/smpp"
	"verifyd/smpp/smpptest"
)

// BenchmarkSubmit drives sustained submit_sm through ONE bind with a window
// of 50 against the fake SMSC, from twice as many senders as the window so it
// stays full. It reports submits per second and the most submits the SMSC
// saw in flight, which must be the window: no more (the client would break
// its promise) and no less (the window would not be used).
func BenchmarkSubmit(b *testing.B) {
	const window = 50
	srv := smpptest.NewServer(b, smpptest.Options{SystemID: "bench", Password: "pw", NoRecord: true})
	cfg, err := smpp.ParseURL(srv.URL("bench", "pw", "window=50&binds=1&timeout=10s"))
	if err != nil {
		b.Fatal(err)
	}
	c := smpp.NewClient(cfg, nil, nil)
	c.Start(context.Background())
	defer c.Close(context.Background())
	for c.Ready() != nil {
		time.Sleep(time.Millisecond)
	}
	m := &verifyd.SMS{RequestID: "bench", To: "447700900123", From: "verifyd", Text: "Your verification code is 123456",
		ValidUntil: time.Now().Add(time.Hour)}

	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		fails atomic.Int64
	)
	n := int64(b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range 2 * window {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= n {
				if _, err := c.Send(context.Background(), m); err != nil {
					fails.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if f := fails.Load(); f > 0 {
		b.Fatalf("%d of %d sends failed", f, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "submits/s")
	b.ReportMetric(float64(srv.MaxInFlight()), "max-in-flight")
	if b.N >= 10*window {
		if got := srv.MaxInFlight(); got != window {
			b.Fatalf("SMSC saw at most %d in flight, want the window %d", got, window)
		}
	}
}
