package metrics

import (
	"context"
	"sync"
	"time"

	"verifyd"
)

// The outcomes of one hand-over, as verifyd_delivery_handovers_total names
// them. Retry stands for a result that queues the message again, which is
// not a delivery state a reader would recognise.
const (
	outcomeSubmitted = "Submitted"
	outcomeDelivered = "Delivered"
	outcomeRetry     = "Retry"
	outcomeFailed    = "Failed"
	outcomeExpired   = "Expired"
)

// maxPending bounds the claimed messages whose creation times are kept
// until their hand-over is recorded. The delivery worker has at most a few
// hundred in hand; the bound only matters if recording keeps failing.
const maxPending = 1 << 16

// Messages returns s with its hand-overs and receipts counted. Give it to
// the delivery worker as its store and to the sender as its receipt
// recorder, in place of the store itself.
func (m *Metrics) Messages(s verifyd.MessageStore) verifyd.MessageStore {
	return &messageStore{MessageStore: s, m: m, created: map[string]time.Time{}}
}

// messageStore counts what passes through a MessageStore. It remembers the
// creation time of each claimed message until the worker records its
// hand-over, because a result carries only the request id.
type messageStore struct {
	verifyd.MessageStore
	m *Metrics

	mu      sync.Mutex
	created map[string]time.Time // request id -> verification created, while claimed
}

func (s *messageStore) ClaimMessages(ctx context.Context, now time.Time, lease time.Duration, max int) ([]*verifyd.Message, error) {
	ms, err := s.MessageStore.ClaimMessages(ctx, now, lease, max)
	if len(ms) > 0 {
		s.mu.Lock()
		if len(s.created)+len(ms) > maxPending {
			// Only timings are lost: the counts do not depend on the map.
			clear(s.created)
		}
		for _, msg := range ms {
			s.created[msg.RequestID] = msg.Created
		}
		s.mu.Unlock()
	}
	return ms, err
}

func (s *messageStore) FinishMessages(ctx context.Context, results []verifyd.MessageResult) error {
	if err := s.MessageStore.FinishMessages(ctx, results); err != nil {
		// Nothing was recorded; the worker tries the same batch again, or
		// the messages are claimed anew once their leases run out.
		return err
	}
	type timing struct {
		created, at time.Time
	}
	var timings []timing
	s.mu.Lock()
	for _, r := range results {
		if c, ok := s.created[r.RequestID]; ok {
			delete(s.created, r.RequestID)
			if r.State == verifyd.DeliverySubmitted || r.State == verifyd.DeliveryDelivered {
				timings = append(timings, timing{c, r.At})
			}
		}
	}
	s.mu.Unlock()
	for _, r := range results {
		s.m.handovers.WithLabelValues(outcome(r.State)).Inc()
	}
	for _, t := range timings {
		s.m.toSubmit.Observe(t.at.Sub(t.created).Seconds())
	}
	return nil
}

func (s *messageStore) RecordReceipt(ctx context.Context, r verifyd.Receipt) error {
	if err := s.MessageStore.RecordReceipt(ctx, r); err != nil {
		return err
	}
	s.m.receipts.WithLabelValues(string(r.State)).Inc()
	return nil
}

// outcome is the handovers label of a result's state.
func outcome(s verifyd.DeliveryState) string {
	switch s {
	case verifyd.DeliverySubmitted:
		return outcomeSubmitted
	case verifyd.DeliveryDelivered:
		return outcomeDelivered
	case verifyd.DeliveryQueued:
		return outcomeRetry
	case verifyd.DeliveryExpired:
		return outcomeExpired
	default:
		return outcomeFailed
	}
}
