package main

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// A run is closed-loop: a fixed number of workers, each with its own
// connection, each sending its next request as soon as the last is
// answered. That is how a pool of application servers talks to verifyd, and
// it makes the two targets comparable: the same workers, the same
// connections, the same time.

// worker is one connection's loop. Workloads keep their per-connection
// state in it.
type worker struct {
	id      int
	c       *client
	state   any // a workload's own, made by its op on first use
	lat     []time.Duration
	ops     int64
	errs    int64
	samples []string // the first few errors, for the report
}

// op does one unit of work (a request, or a whole flow) on w and returns
// nil only when every answer was the right one.
type op func(w *worker) error

// errExhausted stops a worker whose workload has nothing left to send
// (every pre-created request used up).
var errExhausted = errors.New("workload exhausted")

// runSpec says how long and how wide a run is.
type runSpec struct {
	addrs       []string // workers are spread over these, round robin
	user, pass  string
	conns       int
	warmup, dur time.Duration
	// onStart and onEnd run when the measured window opens and closes.
	onStart, onEnd func()
}

// result is what one run measured.
type result struct {
	ops, errs int64
	window    time.Duration
	lat       []time.Duration // sorted
	samples   []string
	exhausted bool // some worker ran out of work before the end

	// CPU used in the window, in cores: by the servers, and by the
	// harness (load generator, and the fake SMSC when it runs).
	serverCPU, clientCPU float64
	// dbCPU is the PostgreSQL server's, when the harness started it.
	dbCPU float64
	// writer is what the SQLite writers did in the window.
	writer writerCounts
}

func (r result) rate() float64 {
	if r.window <= 0 {
		return 0
	}
	return float64(r.ops) / r.window.Seconds()
}

// pct is the p-th percentile latency (0 < p < 100), 0 without samples.
func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat))*p/100+0.5) - 1
	return r.lat[min(max(i, 0), len(r.lat)-1)]
}

// drive runs fn on spec.conns workers for spec.warmup, unmeasured, then for
// spec.dur, measured. A unit counts when it started and ended inside the
// window; an error counts wherever it happened, since no wrong answer is
// acceptable, warm or not.
func drive(spec runSpec, fn op) result {
	var (
		wg        sync.WaitGroup
		exhausted atomic.Bool
		workers   = make([]*worker, spec.conns)
	)
	for i := range workers {
		workers[i] = &worker{id: i, c: newClient(spec.addrs[i%len(spec.addrs)], spec.user, spec.pass)}
	}
	start := time.Now()
	open := start.Add(spec.warmup)
	end := open.Add(spec.dur)

	var hooks sync.WaitGroup
	hooks.Go(func() {
		time.Sleep(time.Until(open))
		if spec.onStart != nil {
			spec.onStart()
		}
		time.Sleep(time.Until(end))
		if spec.onEnd != nil {
			spec.onEnd()
		}
	})
	for _, w := range workers {
		wg.Go(func() {
			defer w.c.close()
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				err := fn(w)
				t1 := time.Now()
				if errors.Is(err, errExhausted) {
					exhausted.Store(true)
					return
				}
				if err != nil {
					w.errs++
					if len(w.samples) < 3 {
						w.samples = append(w.samples, err.Error())
					}
					// A refused or broken connection fails at once; do not
					// spin on it.
					time.Sleep(time.Millisecond)
					continue
				}
				if !t0.Before(open) && !t1.After(end) {
					w.ops++
					w.lat = append(w.lat, t1.Sub(t0))
				}
			}
		})
	}
	wg.Wait()
	hooks.Wait()

	r := result{window: spec.dur, exhausted: exhausted.Load()}
	for _, w := range workers {
		r.ops += w.ops
		r.errs += w.errs
		r.lat = append(r.lat, w.lat...)
		for _, s := range w.samples {
			if len(r.samples) < 5 {
				r.samples = append(r.samples, s)
			}
		}
	}
	slices.Sort(r.lat)
	return r
}

// merge adds the run o to r: counts and windows add up, latencies pool,
// and CPU is averaged over the windows.
func (r result) merge(o result) result {
	w := r.window + o.window
	avg := func(a, b float64) float64 {
		if w == 0 {
			return 0
		}
		return (a*r.window.Seconds() + b*o.window.Seconds()) / w.Seconds()
	}
	m := result{
		ops: r.ops + o.ops, errs: r.errs + o.errs, window: w,
		lat:       append(append([]time.Duration(nil), r.lat...), o.lat...),
		samples:   append(append([]string(nil), r.samples...), o.samples...),
		exhausted: r.exhausted || o.exhausted,
		serverCPU: avg(r.serverCPU, o.serverCPU),
		clientCPU: avg(r.clientCPU, o.clientCPU),
		dbCPU:     avg(r.dbCPU, o.dbCPU),
		writer:    r.writer.plus(o.writer),
	}
	slices.Sort(m.lat)
	if len(m.samples) > 5 {
		m.samples = m.samples[:5]
	}
	return m
}
