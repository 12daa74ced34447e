package main

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"verifyd/smpp/smpptest"
)

// The end-to-end workload needs an SMSC that is never the bottleneck:
// smpptest's fake, run in the harness's own process. smpptest is built for
// tests and wants a testing.TB for its clean-up and its fatal errors; the
// harness gives it this one.

// harnessTB is the part of testing.TB that smpptest.NewServer uses. The
// embedded interface is nil: any other method would panic, loudly, rather
// than pass for a test.
type harnessTB struct {
	testing.TB
	cleanups []func()
}

func (t *harnessTB) Helper()          {}
func (t *harnessTB) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }
func (t *harnessTB) Fatalf(format string, args ...any) {
	panic(smscError{fmt.Errorf(format, args...)})
}

// close runs the clean-ups, last first, as testing does.
func (t *harnessTB) close() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	t.cleanups = nil
}

type smscError struct{ error }

// smsc is a running fake SMSC that also counts distinct destinations: the
// harness gives every request its own number, so a number seen twice is a
// message submitted twice.
type smsc struct {
	*smpptest.Server
	tb *harnessTB

	mu    sync.Mutex
	dests map[string]time.Time // when each number's first submit came
}

// distinct is how many different numbers the SMSC has had submits for.
func (s *smsc) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.dests)
}

// arrivedBy reports whether a submit for number came before t.
func (s *smsc) arrivedBy(number string, t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.dests[number]
	return ok && at.Before(t)
}

// startSMSC starts the fake SMSC on 127.0.0.1:0. It keeps counters and the
// set of numbers, not each submit, so that a long run does not fill the
// harness's memory.
func startSMSC(systemID, password string) (s *smsc, err error) {
	tb := &harnessTB{}
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(smscError)
			if !ok {
				panic(r)
			}
			tb.close()
			s, err = nil, e.error
		}
	}()
	srv := smpptest.NewServer(tb, smpptest.Options{SystemID: systemID, Password: password, NoRecord: true})
	s = &smsc{Server: srv, tb: tb, dests: map[string]time.Time{}}
	srv.OnSubmit(func(sub smpptest.Submit) smpptest.Reply {
		now := time.Now()
		s.mu.Lock()
		if _, ok := s.dests[sub.Dest.Addr]; !ok {
			s.dests[sub.Dest.Addr] = now
		}
		s.mu.Unlock()
		return smpptest.Reply{}
	})
	return s, nil
}

func (s *smsc) close() { s.tb.close() }
