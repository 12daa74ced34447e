package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// With PostgreSQL, verifyd mostly waits: for the database, or the database
// for verifyd. A CPU profile cannot see waiting, but PostgreSQL says what
// each session is doing: sampling pg_stat_activity through the run gives a
// picture of where the time goes on the database side (running, waiting
// for the WAL to flush, for a row lock, or idle in a transaction while
// verifyd works between two statements).

// waitSampler samples pg_stat_activity until stopped.
type waitSampler struct {
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	counts  map[string]int
	samples int
	err     error
}

// sampleEvery is how often the sampler reads pg_stat_activity: every query
// costs the database CPU that the table then counts as its own, so no more
// often than enough to see where sessions wait.
const sampleEvery = 50 * time.Millisecond

// startWaitSampler samples every sampleEvery the sessions of the database at dsn
// other than its own.
func startWaitSampler(dsn string) *waitSampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &waitSampler{cancel: cancel, done: make(chan struct{}), counts: map[string]int{}}
	go func() {
		defer close(s.done)
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			s.err = err
			return
		}
		defer conn.Close(context.Background())
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		for {
			rows, err := conn.Query(ctx, `SELECT state, coalesce(wait_event_type, ''), coalesce(wait_event, ''),
					left(regexp_replace(query, '\s+', ' ', 'g'), 70)
				FROM pg_stat_activity
				WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`)
			if err != nil {
				if ctx.Err() == nil {
					s.err = err
				}
				return
			}
			s.mu.Lock()
			for rows.Next() {
				var state, waitType, wait, verb string
				if rows.Scan(&state, &waitType, &wait, &verb) != nil {
					continue
				}
				s.counts[describeSession(state, waitType, wait, verb)]++
			}
			s.samples++
			s.mu.Unlock()
			rows.Close()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// describeSession names what one session was doing.
func describeSession(state, waitType, wait, verb string) string {
	verb = strings.TrimSpace(verb)
	switch {
	case state == "idle":
		return "idle (no transaction)"
	case state == "idle in transaction":
		return "idle in transaction, waiting for verifyd; last: " + verb
	case waitType == "":
		return "running " + verb
	}
	return fmt.Sprintf("waiting on %s:%s in %s", waitType, wait, verb)
}

// stop ends the sampling and returns the average number of sessions in each
// activity, busiest first.
func (s *waitSampler) stop() ([]string, error) {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.samples == 0 {
		return nil, s.err
	}
	type kv struct {
		k string
		n int
	}
	var all []kv
	for k, n := range s.counts {
		all = append(all, kv{k, n})
	}
	slices.SortFunc(all, func(a, b kv) int { return b.n - a.n })
	var out []string
	for _, e := range all {
		out = append(out, fmt.Sprintf("%5.1f sessions  %s", float64(e.n)/float64(s.samples), e.k))
	}
	return out, s.err
}
