package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"verifyd"
	"verifyd/postgres"
)

// stressOp is what one call of the stress test asks: a wrong code, the
// right code, or a cancel, each as the HTTP handlers run it.
type stressOp int

const (
	stressWrong stressOp = iota
	stressRight
	stressCancel
)

func (o stressOp) String() string { return [...]string{"wrong", "right", "cancel"}[o] }

// errStressFinished is the fns' error for a request already finished, as
// the handlers' errFinished (answered 204).
var errStressFinished = errors.New("verification finished")

// stressAnswer is what the store answered one call.
type stressAnswer struct {
	op    stressOp
	store int
	// status is the one the fn's last run chose, as the handler answers
	// it; v is the row returned, when err is nil.
	status verifyd.Status
	v      verifyd.Verification
	err    error
	runs   int // how many times the fn ran
}

// The classes of an answer.
const (
	stressOK       = "ok"       // written, and answered so
	stressFinished = "finished" // the fn found the request finished
	stressFailed   = "failed"   // EUNAVAILABLE that changed nothing
	stressUnknown  = "unknown"  // EUNAVAILABLE that may follow a lost answer
)

// class is the answer's class; lost says whether answers may have been
// lost (sessions ended, connections cut).
func (a *stressAnswer) class(lost bool) string {
	switch {
	case a.err == nil:
		return stressOK
	case errors.Is(a.err, errStressFinished):
		return stressFinished
	case verifyd.ErrorCode(a.err) != verifyd.EUNAVAILABLE:
		return "other"
	case !lost, strings.Contains(a.err.Error(), "lock timeout"):
		// With no answer lost, an error changed nothing. 55P03 failed
		// the statement or transaction that was to write it, which then
		// wrote nothing (no answer is lost to it); errors.As does not
		// always find it, as noneFoundHeld hides it.
		return stressFailed
	}
	return stressUnknown
}

// ended reports whether the answer says the call finished the request.
func (a *stressAnswer) ended() bool {
	return a.err == nil && (a.op == stressCancel || a.status != verifyd.CodeNotVerified) || errors.Is(a.err, errStressFinished)
}

func (a *stressAnswer) String() string {
	s := fmt.Sprintf("%s@%d", a.op, a.store)
	switch {
	case a.err == nil:
		s += fmt.Sprintf(" %s %s attempts=%d", a.status, a.v.State, a.v.Attempts)
	case errors.Is(a.err, errStressFinished):
		s += " finished"
	default:
		s += fmt.Sprintf(" (%v)", a.err)
	}
	if a.runs > 1 {
		s += fmt.Sprintf(" fn ran %d times", a.runs)
	}
	return s
}

// stressCall validates or cancels id on s, as the HTTP handlers do, at
// time at.
func stressCall(ctx context.Context, s *postgres.Store, accountID int64, id string, op stressOp, at time.Time) stressAnswer {
	ans := stressAnswer{op: op}
	v, err := s.UpdateVerification(ctx, accountID, id, func(v *verifyd.Verification) error {
		ans.runs++
		ans.status = ""
		if op == stressCancel {
			if !v.Cancel(at) {
				return errStressFinished
			}
			return nil
		}
		st, ok := v.Attempt(at, op == stressRight)
		if !ok {
			return errStressFinished
		}
		ans.status = st
		return nil
	})
	ans.err = err
	if err == nil {
		ans.v = *v
	}
	return ans
}

// stressSlot is one of the requests the workers hammer: when it is
// finished, a new request of the same number takes its place.
type stressSlot struct {
	// wrongOnly slots take only wrong codes, with no limit to them, and
	// their numbers' runs of wrong codes are never ended by a right one.
	wrongOnly bool
	number    string
	mu        sync.Mutex
	id        string
}

func (s *stressSlot) current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// stressFaults are the faults a stress run adds to the rows held.
type stressFaults int

const (
	stressHeldRows    stressFaults = iota
	stressEndSessions              // pg_terminate_backend of the instances' sessions
	stressCutAnswers               // connections cut between a statement and its answer
)

// TestValidateStress hammers a few requests from three instances at once
// with wrong codes, right codes and cancels (some requests expiring
// meanwhile, a delivery worker claiming and submitting their messages),
// while other sessions hold random verification, run and message rows
// locked, some for longer than the lock bound; then (EndedSessions) the
// instances' sessions are also ended at random, or (CutAnswers) their
// connections are cut at random, most often after a statement or a COMMIT
// reached the server and before its answer came back, or halfway through
// the answer. Then each answer must be true of the database:
// every wrong code answered used exactly one attempt (and one place in its
// number's run of wrong codes), a request was finished by at most one
// answer and that answer's change is the one stored, a request answered
// finished is finished, and an error changed nothing, except EUNAVAILABLE
// where an answer may have been lost, which changed at most what it was
// about.
//
// The operations are drawn from a seed, logged; VERIFYD_STRESS_SEED draws
// the same again (the interleaving is the scheduler's).
func TestValidateStress(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("VERIFYD_STRESS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("VERIFYD_STRESS_SEED: %v", err)
		}
	}
	t.Logf("seed %d", seed)
	for i, name := range []string{"HeldRows", "EndedSessions", "CutAnswers"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			validateStress(t, seed+uint64(i), stressFaults(i))
		})
	}
}

func validateStress(t *testing.T, seed uint64, faults stressFaults) {
	const (
		nStores   = 3
		nWorkers  = 64
		nSlots    = 20
		nWrong    = 6 // slots that take only wrong codes
		lockBound = 200 * time.Millisecond
		load      = 2500 * time.Millisecond
	)
	ctx := t.Context()
	dsn := newDatabase(t)
	maker := open(t, dsn) // creates the requests; never held up, ended or cut
	storeDSN := dsn
	var proxy *cutProxy
	if faults == stressCutAnswers {
		proxy = startCutProxy(t, dsn, seed)
		storeDSN = proxy.dsn
	}
	// With no fault but rows held, no answer may be lost: not even to the
	// Store's timeout, which a group of validates waiting out the lock
	// bound again and again must not reach.
	timeout := 5 * time.Second
	if faults == stressHeldRows {
		timeout = 15 * time.Second
	}
	stores := make([]*postgres.Store, nStores)
	for i := range stores {
		stores[i] = open(t, fmt.Sprintf("%s&application_name=stress-%d", storeDSN, i), postgres.WithTimeout(timeout))
		stores[i].SetLockedWait(lockBound)
	}
	a := createAccount(t, maker)

	var (
		mu      sync.Mutex
		answers = map[string][]*stressAnswer{}
		slotOf  = map[string]*stressSlot{} // every request made, by id
		nextN   atomic.Int64
	)
	number := func(k int) string { return fmt.Sprintf("4477009%05d", 90000+k) }
	var clock atomic.Int64 // milliseconds past now(), one per call
	create := func(s *stressSlot) error {
		n := nextN.Add(1)
		expiry := rand.New(rand.NewPCG(seed, uint64(6000+n)))
		v, m := pending(a, int(n))
		v.PhoneNumber, m.To = s.number, s.number
		if s.wrongOnly {
			v.MaxAttempts = 1 << 30
		} else if expiry.IntN(4) == 0 {
			// Ends a few calls from now, as often before its right code
			// or its last wrong one as after.
			v.ValidUntil = now().Add(time.Duration(clock.Load()+20+expiry.Int64N(100)) * time.Millisecond)
			m.Deadline = v.ValidUntil
		}
		if err := maker.CreateVerification(ctx, v, m, nil); err != nil {
			return err
		}
		s.id = v.ID
		mu.Lock()
		slotOf[v.ID] = s
		mu.Unlock()
		return nil
	}
	// Three requests share each number, so that their wrong codes meet
	// on its run row.
	slots := make([]*stressSlot, nSlots)
	for i := range slots {
		s := &stressSlot{wrongOnly: i < nWrong, number: number(i / 3)}
		if !s.wrongOnly {
			s.number = number(nWrong/3 + (i-nWrong)/3)
		}
		if err := create(s); err != nil {
			t.Fatal(err)
		}
		slots[i] = s
	}
	// replace puts a new request in s, if old is still its request.
	replace := func(s *stressSlot, old string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.id == old {
			if err := create(s); err != nil {
				t.Errorf("create: %v", err)
			}
		}
	}

	stop := make(chan struct{})
	running := func() bool {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	var wg sync.WaitGroup
	for w := range nWorkers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for running() {
				s := slots[rng.IntN(len(slots))]
				id := s.current()
				op := stressWrong
				if !s.wrongOnly {
					switch r := rng.IntN(100); {
					case r < 10:
						op = stressRight
					case r < 16:
						op = stressCancel
					}
				}
				callCtx, cancel := ctx, context.CancelFunc(func() {})
				if rng.IntN(10) == 0 {
					// A client that gives up: its call may end before a
					// committer takes it.
					callCtx, cancel = context.WithTimeout(ctx, time.Duration(rng.IntN(100))*time.Millisecond)
				}
				st := w % nStores
				ans := stressCall(callCtx, stores[st], a.ID, id, op, now().Add(time.Duration(clock.Add(1))*time.Millisecond))
				cancel()
				ans.store = st
				mu.Lock()
				answers[id] = append(answers[id], &ans)
				mu.Unlock()
				if ans.class(true) == "other" {
					t.Errorf("%s of %s: %v, want an answer, the fn's error or EUNAVAILABLE", op, id, ans.err)
				}
				if !s.wrongOnly && ans.ended() {
					replace(s, id)
				}
			}
		})
	}

	// Rows held by someone else: an administrator's transaction, or an
	// instance that hangs. Most are let go within the lock bound, some
	// are not.
	var held atomic.Int64
	for h := range 2 {
		conn := connect(t, dsn)
		if _, err := conn.Exec(ctx, "SET lock_timeout = '100ms'"); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(1000+h)))
			for running() {
				tx, err := conn.Begin(ctx)
				if err != nil {
					t.Errorf("holder: %v", err)
					return
				}
				for range 1 + rng.IntN(3) {
					s := slots[rng.IntN(len(slots))]
					var err error
					switch rng.IntN(3) {
					case 0:
						_, err = tx.Exec(ctx, "SELECT 1 FROM verifications WHERE id = $1 FOR UPDATE", s.current())
					case 1:
						_, err = tx.Exec(ctx, "SELECT 1 FROM number_failures WHERE account_id = $1 AND phone_number = $2 FOR UPDATE",
							a.ID, s.number)
					case 2:
						_, err = tx.Exec(ctx, "SELECT 1 FROM messages WHERE request_id = $1 FOR UPDATE", s.current())
					}
					if err != nil {
						break // waited too long, or a deadlock: let go
					}
					held.Add(1)
				}
				time.Sleep(time.Duration(rng.IntN(int(2*lockBound/time.Millisecond))) * time.Millisecond)
				tx.Rollback(ctx)
				time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
			}
		})
	}

	// A delivery worker: a message claimed is leased but still Queued,
	// and a cancel withdraws it; one submitted is not withdrawn.
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(seed, 7000))
		for running() {
			time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
			at := now().Add(time.Duration(clock.Load()) * time.Millisecond)
			msgs, err := maker.ClaimMessages(ctx, at, time.Minute, 2)
			if err != nil {
				continue
			}
			var results []verifyd.MessageResult
			for _, m := range msgs {
				if rng.IntN(2) == 0 {
					results = append(results, verifyd.MessageResult{RequestID: m.RequestID, State: verifyd.DeliverySubmitted,
						CarrierIDs: []string{"c-" + m.RequestID}, At: at, Attempt: m.Attempts})
				}
			}
			if len(results) > 0 {
				maker.FinishMessages(ctx, results)
			}
		}
	})

	// Sessions of the instances ended at random, as by an operator, a
	// failover or a proxy.
	var ended atomic.Int64
	if faults == stressEndSessions {
		conn := connect(t, dsn)
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, 2000))
			for running() {
				time.Sleep(time.Duration(20+rng.IntN(60)) * time.Millisecond)
				n := 1
				if rng.IntN(5) == 0 {
					n = 4
				}
				var k int64
				// Busy sessions first: idle ones are ended as well by the
				// pool's reset after the first is found lost.
				if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM (
					SELECT pid FROM pg_stat_activity
					WHERE datname = current_database() AND application_name LIKE 'stress-%'
					ORDER BY state = 'idle', random() LIMIT $1) s`, n).Scan(&k); err != nil {
					t.Errorf("terminator: %v", err)
					return
				}
				ended.Add(k)
			}
		})
	}
	if proxy != nil {
		proxy.cutting.Store(true)
	}

	time.Sleep(load)
	close(stop)
	wg.Wait()
	if proxy != nil {
		proxy.cutting.Store(false)
	}

	// A transaction whose answer was lost may still be finishing.
	conn := connect(t, dsn)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var busy int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name LIKE 'stress-%' AND state <> 'idle'`).Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if busy == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions of the instances still busy", busy)
		}
	}

	lost := faults != stressHeldRows
	checkStress(t, conn, a.ID, answers, slotOf, lost)
	classes := map[string]int{}
	runs := 0
	for _, as := range answers {
		for _, ans := range as {
			classes[ans.class(lost)]++
			runs += ans.runs
		}
	}
	calls := 0
	for _, n := range classes {
		calls += n
	}
	var cut int64
	if proxy != nil {
		cut = proxy.cuts.Load()
	}
	t.Logf("%d calls on %d requests, fns run %d times: %v; %d rows held, %d sessions ended, %d connections cut",
		calls, len(answers), runs, classes, held.Load(), ended.Load(), cut)
	errs := map[string]int{}
	for _, as := range answers {
		for _, ans := range as {
			if c := ans.class(lost); c == stressUnknown || c == stressFailed {
				errs[c+": "+ans.err.Error()]++
			}
		}
	}
	for e, n := range errs {
		t.Logf("%d x %s", n, e)
	}
}

// cutProxy forwards connections to a PostgreSQL server and, while cutting
// is set, cuts some at random, as a network or a proxy may: most often
// right after a message reached the server, so that the server runs it
// (and commits, if it ends a transaction) while its answer is lost.
type cutProxy struct {
	dsn     string // the DSN of the server, through the proxy
	cutting atomic.Bool
	cuts    atomic.Int64
}

// startCutProxy starts a cutProxy to dsn's server, listening on a port of
// 127.0.0.1:48000-48999, until the test ends.
func startCutProxy(t *testing.T, dsn string, seed uint64) *cutProxy {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	rng := rand.New(rand.NewPCG(seed, 3000))
	var l net.Listener
	for range 100 {
		if l, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 48000+rng.IntN(1000))); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	u.Host = l.Addr().String()
	p := &cutProxy{dsn: u.String()}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		wg    sync.WaitGroup
	)
	track := func(c net.Conn, on bool) {
		mu.Lock()
		defer mu.Unlock()
		if on {
			conns[c] = true
		} else {
			delete(conns, c)
		}
	}
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for n := uint64(0); ; n++ {
			client, err := l.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			track(client, true)
			track(server, true)
			rng := rand.New(rand.NewPCG(seed, 4000+n))
			var cut atomic.Bool // set, the server's answers are dropped
			wg.Go(func() {      // client to server, cut at random
				defer func() {
					client.Close()
					server.Close()
					track(client, false)
					track(server, false)
				}()
				buf := make([]byte, 64<<10)
				for {
					n, err := client.Read(buf)
					if err != nil {
						return
					}
					if p.cutting.Load() && rng.IntN(40) == 0 {
						cut.Store(true)
						p.cuts.Add(1)
						if rng.IntN(4) == 0 {
							n = rng.IntN(n) // only part of it reaches the server
						}
						server.Write(buf[:n])
						// Time for the server to run it, or not.
						time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
						return
					}
					if _, err := server.Write(buf[:n]); err != nil {
						return
					}
				}
			})
			srng := rand.New(rand.NewPCG(seed, 5000+n))
			wg.Go(func() { // server to client, cut at random too
				defer func() {
					client.Close()
					server.Close()
				}()
				buf := make([]byte, 64<<10)
				for {
					n, err := server.Read(buf)
					if err != nil || cut.Load() {
						return
					}
					if p.cutting.Load() && srng.IntN(40) == 0 {
						// Only the head of an answer comes back: a pipeline's
						// first results (a transaction's id) without the
						// rest.
						p.cuts.Add(1)
						client.Write(buf[:srng.IntN(n)])
						return
					}
					if _, err := client.Write(buf[:n]); err != nil {
						return
					}
				}
			})
		}
	})
	return p
}

// checkStress checks the answers against the database.
func checkStress(t *testing.T, conn *pgx.Conn, accountID int64, answers map[string][]*stressAnswer, slotOf map[string]*stressSlot, lost bool) {
	t.Helper()
	ctx := t.Context()
	type row struct {
		number                     string
		state                      verifyd.State
		attempts, maxAttempts      int
		verified                   *int64
		messageState, messageError *string
	}
	rows, err := conn.Query(ctx, `SELECT v.id, v.phone_number, v.state, v.attempts, v.max_attempts, v.verified, m.state, m.error
		FROM verifications v LEFT JOIN messages m ON m.request_id = v.id WHERE v.account_id = $1`, accountID)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]row{}
	var id string
	var r row
	if _, err := pgx.ForEachRow(rows, []any{&id, &r.number, &r.state, &r.attempts, &r.maxAttempts, &r.verified,
		&r.messageState, &r.messageError}, func() error {
		stored[id] = r
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runs := map[string]int{}
	rows, err = conn.Query(ctx, "SELECT phone_number, failures FROM number_failures WHERE account_id = $1", accountID)
	if err != nil {
		t.Fatal(err)
	}
	var (
		number   string
		failures int
	)
	if _, err := pgx.ForEachRow(rows, []any{&number, &failures}, func() error {
		runs[number] = failures
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	attempts, verified := map[string]int{}, map[string]bool{}
	for id, r := range stored {
		attempts[r.number] += r.attempts
		verified[r.number] = verified[r.number] || r.state == verifyd.StateVerified
		if slotOf[id] == nil {
			t.Errorf("%s stored, but never created", id)
		}
	}
	for id := range slotOf {
		if _, ok := stored[id]; !ok {
			t.Errorf("%s created, but not stored", id)
		}
	}
	// A wrong code adds to its number's run in the statement that counts
	// it; a right code ends the run.
	for number, n := range attempts {
		switch {
		case !verified[number] && runs[number] != n:
			t.Errorf("number %s: run of %d wrong codes stored, its requests' attempts add up to %d (none verified)",
				number, runs[number], n)
		case runs[number] > n:
			t.Errorf("number %s: run of %d wrong codes stored, more than its requests' %d attempts", number, runs[number], n)
		}
	}

	for id, as := range answers {
		r, ok := stored[id]
		if !ok {
			continue
		}
		var (
			wrongOK, wrongUnknown           int
			rightOK, rightUnknown           int
			cancelOK, cancelUnknown, lockOK int
			expiredOK, finished             int
			seen                            = map[int]bool{}
			bad                             []string
		)
		fail := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
		for _, ans := range as {
			switch c := ans.class(lost); {
			case c == stressFinished:
				finished++
			case c == stressUnknown:
				switch ans.op {
				case stressWrong:
					wrongUnknown++
				case stressRight:
					rightUnknown++
				case stressCancel:
					cancelUnknown++
				}
			case c != stressOK:
			case ans.op == stressWrong && ans.status == verifyd.CodeExpired:
				// Expiry is judged before the code, and uses no attempt.
				expiredOK++
				if ans.v.State != verifyd.StateExpired || ans.v.Attempts != r.attempts {
					fail("a wrong code answered %s, %s with %d attempts", ans.status, ans.v.State, ans.v.Attempts)
				}
			case ans.op == stressWrong:
				wrongOK++
				if seen[ans.v.Attempts] {
					fail("two wrong codes answered with attempt %d", ans.v.Attempts)
				}
				seen[ans.v.Attempts] = true
				if ans.v.Attempts < 1 || ans.v.Attempts > r.attempts {
					fail("a wrong code answered with attempt %d, %d stored", ans.v.Attempts, r.attempts)
				}
				switch ans.status {
				case verifyd.CodeNotVerified:
					if ans.v.State != verifyd.StatePending || ans.v.Attempts >= r.maxAttempts {
						fail("a wrong code answered %s, %s with %d attempts", ans.status, ans.v.State, ans.v.Attempts)
					}
				case verifyd.CodeLocked:
					lockOK++
					if ans.v.State != verifyd.StateLocked || ans.v.Attempts != r.maxAttempts {
						fail("a wrong code answered %s, %s with %d attempts", ans.status, ans.v.State, ans.v.Attempts)
					}
				default:
					fail("a wrong code answered %s", ans.status)
				}
			case ans.op == stressRight && ans.status == verifyd.CodeExpired:
				expiredOK++
				if ans.v.State != verifyd.StateExpired || ans.v.Attempts != r.attempts {
					fail("a right code answered %s, %s", ans.status, ans.v.State)
				}
			case ans.op == stressRight:
				rightOK++
				if ans.status != verifyd.CodeVerified || ans.v.State != verifyd.StateVerified {
					fail("a right code answered %s, %s", ans.status, ans.v.State)
				} else if r.verified == nil || ans.v.Verified.UnixMilli() != *r.verified || ans.v.Attempts != r.attempts {
					fail("a right code answered verified at %d after %d attempts; stored %s after %d",
						ans.v.Verified.UnixMilli(), ans.v.Attempts, stressMS(r.verified), r.attempts)
				}
			case ans.op == stressCancel && ans.v.State == verifyd.StateExpired:
				expiredOK++ // a cancel after the validity records the expiry
			case ans.op == stressCancel:
				cancelOK++
				if ans.v.State != verifyd.StateCancelled {
					fail("a cancel answered %s", ans.v.State)
				}
			}
		}
		if r.attempts < wrongOK || r.attempts > wrongOK+wrongUnknown {
			fail("%d attempts stored; %d wrong codes answered, %d more unknown", r.attempts, wrongOK, wrongUnknown)
		}
		if n := lockOK + rightOK + cancelOK + expiredOK; n > 1 {
			fail("%d answers finished it: %d locked, %d verified, %d cancelled, %d expired", n, lockOK, rightOK, cancelOK, expiredOK)
		}
		unknown := wrongUnknown + rightUnknown + cancelUnknown
		if finished > 0 && r.state == verifyd.StatePending {
			fail("%d calls answered it finished, but it is Pending", finished)
		}
		// A cancel withdraws a message still Queued (claimed or not), and
		// nothing else does.
		withdrawn := r.messageState != nil && *r.messageState == string(verifyd.DeliveryFailed) &&
			r.messageError != nil && *r.messageError == "cancelled"
		queued := r.messageState != nil && *r.messageState == string(verifyd.DeliveryQueued)
		message := "none"
		if r.messageState != nil {
			message = *r.messageState
			if r.messageError != nil && *r.messageError != "" {
				message += " (" + *r.messageError + ")"
			}
		}
		if r.state != verifyd.StateCancelled && withdrawn || r.state == verifyd.StateCancelled && queued {
			fail("%s, its message %s", r.state, message)
		}
		if r.state != verifyd.StateExpired && expiredOK > 0 {
			fail("%s, after %d expired answers", r.state, expiredOK)
		}
		switch r.state {
		case verifyd.StateExpired:
			if lockOK+rightOK+cancelOK > 0 || expiredOK == 0 && unknown == 0 {
				fail("Expired after %d locked, %d verified, %d cancelled, %d expired answers, %d unknown",
					lockOK, rightOK, cancelOK, expiredOK, unknown)
			}
		case verifyd.StatePending:
			if lockOK+rightOK+cancelOK > 0 || r.attempts >= r.maxAttempts {
				fail("Pending with %d attempts, message %s, after %d locked, %d verified, %d cancelled answers",
					r.attempts, message, lockOK, rightOK, cancelOK)
			}
		case verifyd.StateVerified:
			if lockOK+cancelOK > 0 || rightOK+rightUnknown == 0 || r.verified == nil {
				fail("Verified (at %s) with message %s, after %d locked, %d verified (%d unknown), %d cancelled answers",
					stressMS(r.verified), message, lockOK, rightOK, rightUnknown, cancelOK)
			}
		case verifyd.StateLocked:
			if rightOK+cancelOK > 0 || r.attempts != r.maxAttempts || lockOK == 0 && wrongUnknown == 0 {
				fail("Locked with %d of %d attempts, message %s, after %d locked (%d wrong unknown), %d verified, %d cancelled answers",
					r.attempts, r.maxAttempts, message, lockOK, wrongUnknown, rightOK, cancelOK)
			}
		case verifyd.StateCancelled:
			if lockOK+rightOK > 0 || cancelOK+cancelUnknown == 0 {
				fail("Cancelled with message %s, after %d locked, %d verified, %d cancelled (%d unknown) answers",
					message, lockOK, rightOK, cancelOK, cancelUnknown)
			}
		default:
			fail("state %s", r.state)
		}
		if len(bad) > 0 {
			list := make([]string, len(as))
			for i, ans := range as {
				list[i] = ans.String()
			}
			if len(list) > 40 {
				list = append(list[:40], fmt.Sprintf("... %d more", len(list)-40))
			}
			t.Errorf("%s (%s, %d attempts stored): %s\n\tanswers in the order answered: %s", id, r.state, r.attempts,
				strings.Join(slices.Compact(bad), "; "), strings.Join(list, "\n\t\t"))
		}
	}
}

// stressMS prints a stored time in milliseconds, or never.
func stressMS(ms *int64) string {
	if ms == nil {
		return "never"
	}
	return fmt.Sprint(*ms)
}
