package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"verifyd"
)

// Writes are committed in groups: whatever calls of one kind are waiting
// when a committer is free go into one transaction, and none of them returns
// before that transaction's commit. A commit waits for the WAL to reach the
// disk, and PostgreSQL spends much of its time on each commit's flush and
// on the sessions queued behind it: a few commits of many rows cost the
// database far less than many commits of one row, so grouping is what lets
// several instances share one database. A lone call finds a committer
// waiting and starts at once, so grouping adds nothing when there is no
// crowd.

// ErrClosed is what a write returns once Close has been called.
var ErrClosed = errors.New("postgres: the store is closed")

// call is one write waiting for its group's commit.
type call[T any] struct {
	ctx  context.Context
	arg  T
	err  error
	done chan struct{}
}

func (c *call[T]) finish(err error) {
	c.err = err
	close(c.done)
}

// groups commits the calls of one kind in groups.
type groups[T any] struct {
	calls chan *call[T] // unbuffered, so a call sent is always answered
	// max bounds a group, and so the latency one large group adds to the
	// calls in it.
	max int
	// committers is how many groups may be in flight at once: while one
	// commits, the next fills.
	committers int
	// key, if set, names the row a call writes: a second call with the key
	// of one already in the group waits for the next group, so that it
	// meets the first's outcome exactly as it would one at a time.
	key func(T) string
	// keyLocks says that the rows a call may wait to lock are named by its
	// key (a validate's verification; a receipt's part and that part's
	// message): a call that waited out the lock bound leaves a row still
	// held for each call queued behind it with its key, which commitGroup
	// then fails at once. Not so for a create, whose key is its request id
	// and whose locks are its limit buckets: a create behind one with its
	// id may charge other buckets, and is tried.
	keyLocks bool
	// commit runs one group in one transaction and returns each call's
	// outcome, or an error for the whole group.
	commit func(ctx context.Context, group []*call[T]) ([]error, error)
	// waitAll makes a caller whose context ends wait for its call anyway,
	// once a committer has taken it: for calls that run the caller's own
	// code (a validate's fn), which must not run after the caller returned,
	// and for creates, which must not be answered an error for a create
	// their group then commits.
	waitAll bool
}

// start runs g's committers until the Store closes.
func (g *groups[T]) start(s *Store) {
	g.calls = make(chan *call[T])
	for range g.committers {
		s.committers.Add(1)
		go func() {
			defer s.committers.Done()
			g.commitLoop(s)
		}()
	}
}

// do hands arg to a committer and waits for its group's outcome. The wait
// for a committer counts against the Store's timeout too: while the
// database hangs, groups take a whole timeout each, and calls queued behind
// them would otherwise wait one more timeout per group ahead. A call whose
// time ran out before a group took it is answered EUNAVAILABLE unrun; one
// taken waits for its group, which has a timeout of its own, so no call
// waits much more than twice the timeout however many are waiting.
func (g *groups[T]) do(s *Store, ctx context.Context, arg T) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	c := &call[T]{ctx: ctx, arg: arg, done: make(chan struct{})}
	select {
	case g.calls <- c:
	case <-s.closed:
		return ErrClosed
	case <-ctx.Done():
		return s.translate(ctx, ctx.Err())
	}
	if g.waitAll {
		<-c.done
		return c.err
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		// The group may still commit it; the caller just stops waiting.
		return s.translate(ctx, ctx.Err())
	}
}

// commitLoop takes groups of waiting calls and commits them, until the
// Store closes.
func (g *groups[T]) commitLoop(s *Store) {
	group := make([]*call[T], 0, g.max)
	for {
		select {
		case c := <-g.calls:
			group = append(group[:0], c)
		case <-s.closed:
			return
		}
	more:
		for len(group) < g.max {
			select {
			case c := <-g.calls:
				group = append(group, c)
			default:
				break more
			}
		}
		g.commitGroup(s, group)
	}
}

// commitGroup commits one group and tells each call its outcome. A group
// that fails for a reason other than the database being unavailable is
// tried again one call at a time, so that one bad call fails only itself.
func (g *groups[T]) commitGroup(s *Store, group []*call[T]) {
	var now, later []*call[T]
	var seen map[string]bool
	if g.key != nil {
		seen = make(map[string]bool, len(group))
	}
	for _, c := range group {
		if err := c.ctx.Err(); err != nil {
			c.finish(s.translate(c.ctx, err))
			continue
		}
		if g.key != nil {
			k := g.key(c.arg)
			if seen[k] {
				later = append(later, c)
				continue
			}
			seen[k] = true
		}
		now = append(now, c)
	}
	var stuck map[string]error
	if len(now) > 0 {
		errs, err := g.run(s, now)
		switch {
		case err == nil:
			for i, c := range now {
				c.finish(errs[i])
				if g.keyLocks && lockTimeout(errs[i]) {
					if stuck == nil {
						stuck = map[string]error{}
					}
					stuck[g.key(c.arg)] = errs[i]
				}
			}
		case len(now) > 1 && verifyd.ErrorCode(err) != verifyd.EUNAVAILABLE:
			for _, c := range now {
				g.commitGroup(s, []*call[T]{c})
			}
		default:
			for _, c := range now {
				c.finish(err)
			}
			if g.keyLocks && len(now) == 1 && lockTimeout(err) {
				// A lone call that waited out the bound leaves its row
				// as held as a call of a larger group does.
				stuck = map[string]error{g.key(now[0].arg): err}
			}
		}
	}
	if len(stuck) > 0 {
		// A row someone else held locked past the bound is still held:
		// the calls queued behind for it would each wait the bound again,
		// one after the other, with every other call of this kind waiting
		// behind them.
		rest := later[:0]
		for _, c := range later {
			if err, ok := stuck[g.key(c.arg)]; ok {
				c.finish(err)
				continue
			}
			rest = append(rest, c)
		}
		later = rest
	}
	if len(later) > 0 {
		g.commitGroup(s, later)
	}
}

// lockTimeout reports a call that failed because a row it needed stayed
// locked past the server's lock_timeout.
func lockTimeout(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03"
}

// aroundLocked is a group whose transaction waited for a row lock past
// lockedWait (cause), its calls split by stuck, which tells those that need
// a row still locked: they answer EUNAVAILABLE, and the others are
// committed by commit as a group of their own, so that a row held by
// someone else fails only the calls that need it. If no call is stuck,
// the whole group fails with cause, as it would have.
func aroundLocked[T any](ctx context.Context, s *Store, group []*call[T], cause error,
	stuck func(T) bool, commit func(context.Context, []*call[T]) ([]error, error)) ([]error, error) {
	errs := make([]error, len(group))
	var (
		rest []*call[T]
		at   []int
	)
	for i, c := range group {
		if stuck(c.arg) {
			errs[i] = s.unavailable(cause)
			continue
		}
		rest, at = append(rest, c), append(at, i)
	}
	if len(rest) == len(group) {
		return nil, cause
	}
	if len(rest) == 0 {
		return errs, nil
	}
	// The stuck calls' answers are decided, so the rest cannot go back to
	// groups.run to be tried again after a deadlock.
	var restErrs []error
	err := retryAborted(ctx, func() (err error) {
		restErrs, err = commit(ctx, rest)
		return err
	})
	if err != nil {
		err = s.groupErr(ctx, err, len(rest))
	}
	for j, i := range at {
		if err != nil {
			errs[i] = err
		} else {
			errs[i] = restErrs[j]
		}
	}
	return errs, nil
}

// groupErr is err, which failed a group of n calls as a whole, as each
// call's own outcome. A lock timeout of a group of more than one found no
// call's own row held (a call whose row was is split off by aroundLocked):
// the lock went meanwhile, or was for a row no probe sees. It is passed on
// as EUNAVAILABLE that lockTimeout does not report, or commitGroup would
// take each call's key for stuck and fail unrun the calls queued behind
// with it, whose rows may well be free.
func (s *Store) groupErr(ctx context.Context, err error, n int) error {
	if n > 1 && lockTimeout(err) {
		return s.unavailable(noneFoundHeld{err})
	}
	return s.translate(ctx, err)
}

// noneFoundHeld is a group's lock timeout whose held row was not found.
// It has no Unwrap, so that lockTimeout does not see the timeout in it.
type noneFoundHeld struct{ err error }

func (e noneFoundHeld) Error() string { return e.err.Error() }

// run commits the group under the Store's timeout, again if the server
// broke a deadlock by aborting it or the connection was found dead before
// anything was sent, and translates the group's error.
func (g *groups[T]) run(s *Store, group []*call[T]) (errs []error, err error) {
	ctx, cancel := s.bound(context.Background())
	defer cancel()
	err = retryAborted(ctx, func() (err error) {
		errs, err = g.commit(ctx, group)
		return err
	})
	return errs, s.translate(ctx, err)
}
