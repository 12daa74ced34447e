// Package inbox is the dev sender: instead of texting a phone it keeps each
// message in the store, where the dev inbox page shows it, so a developer
// sees every code without a phone.
package inbox

import (
	"context"
	"fmt"
	"time"

	"verifyd"
)

// Sealer seals a message text under the server key; the inbox keeps texts
// sealed like the outbox does, so no code reaches the disk in plaintext.
type Sealer interface {
	Seal(requestID string, plaintext []byte) []byte
}

// Sender is a verifyd.Sender that delivers into the inbox.
type Sender struct {
	store    verifyd.InboxStore
	receipts verifyd.ReceiptRecorder
	sealer   Sealer
	now      func() time.Time
}

var _ verifyd.Sender = (*Sender)(nil)

// New returns an inbox Sender. Each message is reported Delivered to
// receipts right away, the way a carrier's receipt would, so the delivery
// states look in dev as they do in production.
func New(store verifyd.InboxStore, receipts verifyd.ReceiptRecorder, sealer Sealer, now func() time.Time) *Sender {
	return &Sender{store: store, receipts: receipts, sealer: sealer, now: now}
}

// Send keeps m in the inbox and returns its inbox id as the carrier id.
func (s *Sender) Send(ctx context.Context, m *verifyd.SMS) ([]string, error) {
	now := s.now()
	msg := &verifyd.InboxMessage{
		RequestID: m.RequestID,
		To:        m.To,
		From:      m.From,
		Sealed:    s.sealer.Seal(m.RequestID, []byte(m.Text)),
		Created:   now,
	}
	if err := s.store.AddInboxMessages(ctx, []*verifyd.InboxMessage{msg}); err != nil {
		return nil, &verifyd.SendError{Kind: verifyd.SendTemporary, Reason: "inbox unavailable", Err: err}
	}
	id := fmt.Sprintf("inbox-%d", msg.ID)
	// The receipt may well be recorded before the worker records the carrier
	// id: the store keeps it and matches it then, as with a fast carrier.
	if err := s.receipts.RecordReceipt(ctx, verifyd.Receipt{CarrierID: id, State: verifyd.DeliveryDelivered, At: now}); err != nil {
		return nil, &verifyd.SendError{Kind: verifyd.SendTemporary, Reason: "inbox unavailable", Err: err}
	}
	return []string{id}, nil
}

// Ready reports that the inbox can always take a message.
func (s *Sender) Ready() error { return nil }
