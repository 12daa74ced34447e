// Package delivery works the outbox: it claims due messages from the store,
// opens their sealed text, hands them to the sender, and records what
// happened, in batches so that one commit covers many messages.
package delivery

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"verifyd"
)

// Opener opens a message text sealed under the server key.
type Opener interface {
	Open(requestID string, sealed []byte) ([]byte, error)
}

// Config is what a Worker needs. Zero durations and sizes take the defaults
// noted on each field.
type Config struct {
	Store  verifyd.MessageStore
	Sender verifyd.Sender
	Opener Opener
	Now    func() time.Time
	Logger *slog.Logger

	// Concurrency is how many messages may be with the sender at once
	// (default 256); an SMPP sender's windows bound the real in-flight count.
	Concurrency int
	// Batch is the most messages claimed or finished in one store call
	// (default 256).
	Batch int
	// Lease is how long a claimed message is ours before another worker may
	// claim it again (default 1 minute): after a crash, the dead worker's
	// messages wait this long. A hand-over is cut off at three quarters of
	// it, so the lease always outlasts the hand-over.
	Lease time.Duration
	// Poll is how often the queue is checked when nobody calls Wake
	// (default 1 s); retries and other nodes' messages are found this way.
	Poll time.Duration
	// MaxBackoff caps the wait between two tries of one message (default 30 s).
	MaxBackoff time.Duration
}

// Worker delivers queued messages until its context ends.
type Worker struct {
	cfg     Config
	wake    chan struct{}
	slots   chan struct{}
	freed   chan struct{} // a hand-over ended; holds one at most
	results chan verifyd.MessageResult

	delivered verifyd.DeliveryState // what a successful Send makes of a message
}

// New returns a Worker; call Run to start it.
func New(cfg Config) *Worker {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 256
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 256
	}
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	delivered := verifyd.DeliverySubmitted
	if _, ok := cfg.Sender.(verifyd.FinalSender); ok {
		delivered = verifyd.DeliveryDelivered
	}
	return &Worker{
		delivered: delivered,
		cfg:       cfg,
		wake:      make(chan struct{}, 1),
		slots:     make(chan struct{}, cfg.Concurrency),
		freed:     make(chan struct{}, 1),
		results:   make(chan verifyd.MessageResult, cfg.Concurrency),
	}
}

// Wake tells the worker that a message was just queued, so it claims now
// instead of at the next poll. It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run claims and delivers messages until ctx ends. Hand-overs already under
// way finish and are recorded before Run returns, so a graceful stop loses
// no outcome (an SMPP submit waits for its response).
func (w *Worker) Run(ctx context.Context) {
	var sends sync.WaitGroup
	finished := make(chan struct{})
	go func() {
		w.finishLoop(ctx)
		close(finished)
	}()
	w.claimLoop(ctx, &sends)
	sends.Wait()
	close(w.results)
	<-finished
}

func (w *Worker) claimLoop(ctx context.Context, sends *sync.WaitGroup) {
	poll := time.NewTicker(w.cfg.Poll)
	defer poll.Stop()
	backoff := time.Duration(0)
	// While the queue holds more than a claim takes, claims wait for a
	// quarter of the slots to come free, so that a draining queue is
	// claimed in a few large batches, not one message per hand-over.
	low := max(1, min(w.cfg.Batch, cap(w.slots))/4)
	busy := false
	for ctx.Err() == nil {
		free := min(cap(w.slots)-len(w.slots), w.cfg.Batch)
		if free == 0 || busy && free < low {
			// Wait for hand-overs to end rather than for the next wake
			// or poll, which may not come while the queue drains.
			select {
			case <-ctx.Done():
			case <-w.freed:
			}
			continue
		}
		claimed := w.cfg.Now()
		msgs, err := w.cfg.Store.ClaimMessages(ctx, claimed, w.cfg.Lease, free)
		if err != nil && ctx.Err() == nil {
			w.cfg.Logger.Error("claiming messages", "err", err, "claimed", len(msgs))
			if len(msgs) == 0 {
				// The database is away: keep the error in the log, not in a loop.
				backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
				sleep(ctx, backoff)
				continue
			}
			// What the claim returned is leased to us all the same: send
			// it now rather than a lease later.
		}
		backoff = 0
		for _, m := range msgs {
			w.slots <- struct{}{}
			sends.Add(1)
			go func() {
				defer sends.Done()
				w.results <- w.deliver(ctx, m, claimed.Add(w.cfg.Lease*3/4))
				<-w.slots
				select {
				case w.freed <- struct{}{}:
				default:
				}
			}()
		}
		if busy = len(msgs) == free; busy {
			continue // there may be more waiting
		}
		select {
		case <-ctx.Done():
		case <-w.wake:
		case <-poll.C:
		}
	}
}

// deliver hands one message over and says what to record. The sender gets
// a context that outlives a shutdown, so a submit under way gets its answer
// instead of being cut off, but not the lease or the message's deadline.
func (w *Worker) deliver(ctx context.Context, m *verifyd.Message, cutoff time.Time) verifyd.MessageResult {
	now := w.cfg.Now()
	res := verifyd.MessageResult{RequestID: m.RequestID, At: now, Attempt: m.Attempts}
	text, err := w.cfg.Opener.Open(m.RequestID, m.Sealed)
	if err != nil {
		// Only a changed server key gets here; retrying cannot help.
		w.cfg.Logger.Error("opening message text", "request", m.RequestID, "err", err)
		res.State, res.Error = verifyd.DeliveryFailed, "text cannot be opened with the server key"
		return res
	}
	if m.Deadline.Before(cutoff) {
		cutoff = m.Deadline
	}
	sendCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), cutoff)
	defer cancel()
	ids, err := w.cfg.Sender.Send(sendCtx, &verifyd.SMS{
		RequestID:  m.RequestID,
		To:         m.To,
		From:       m.From,
		Text:       string(text),
		ValidUntil: m.Deadline,
	})
	clear(text)
	res.At = w.cfg.Now()
	if err == nil {
		res.State, res.CarrierIDs = w.delivered, ids
		return res
	}
	se := verifyd.SendErrorOf(err)
	res.Error = se.Reason
	if se.Kind == verifyd.SendPermanent {
		w.cfg.Logger.Warn("message refused", "request", m.RequestID, "reason", se.Reason)
		res.State = verifyd.DeliveryFailed
		return res
	}
	next := res.At.Add(w.backoff(m.Attempts, se.Kind))
	if !next.Before(m.Deadline) {
		res.State = verifyd.DeliveryExpired
		return res
	}
	w.cfg.Logger.Info("message will be retried", "request", m.RequestID, "reason", se.Reason, "attempt", m.Attempts)
	res.State, res.NextAttempt = verifyd.DeliveryQueued, next
	return res
}

// backoff is the wait before try attempts+1: exponential from one second,
// capped, with full jitter in its upper half so that a carrier outage does
// not come back as one synchronised burst. Throttling waits only briefly:
// the carrier is up, just busy.
func (w *Worker) backoff(attempts int, kind verifyd.SendErrorKind) time.Duration {
	if kind == verifyd.SendThrottled {
		return time.Second
	}
	d := w.cfg.MaxBackoff
	if attempts < 16 {
		d = min(time.Second<<max(attempts-1, 0), w.cfg.MaxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

// finishLoop records results, grouping whatever has arrived into one call.
func (w *Worker) finishLoop(ctx context.Context) {
	batch := make([]verifyd.MessageResult, 0, w.cfg.Batch)
	for r := range w.results {
		batch = append(batch[:0], r)
	more:
		for len(batch) < w.cfg.Batch {
			select {
			case r, ok := <-w.results:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		w.record(ctx, batch)
	}
}

// record stores one batch, retrying while the store is away, for as long as
// a lease lasts: a batch not recorded is claimed again once its leases run
// out and sent a second time, so giving up sooner (it once gave up after
// about 3 s) turned a short database outage into a duplicate text for every
// message handed over during it. Meanwhile the worker's hand-overs wait for
// this one, which is as well while the database is away. Once the worker is
// stopping (ctx done), a few tries only, so the stop stays bounded; if the
// store never comes back, the messages go out again after their lease: at
// least once, with the same text.
func (w *Worker) record(ctx context.Context, batch []verifyd.MessageResult) {
	giveUp := w.cfg.Now().Add(w.cfg.Lease)
	for try := 0; ; try++ {
		fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := w.cfg.Store.FinishMessages(fctx, batch)
		cancel()
		if err == nil {
			return
		}
		w.cfg.Logger.Error("recording deliveries", "messages", len(batch), "err", err, "try", try+1)
		if ctx.Err() != nil && try >= 5 || w.cfg.Now().After(giveUp) {
			return
		}
		time.Sleep(min(time.Duration(try+1)*200*time.Millisecond, time.Second))
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
