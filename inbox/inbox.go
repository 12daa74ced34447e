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

// Sender is a verifyd.Sender that delivers into the inbox. It is a
// FinalSender: once a message is in the inbox it is delivered, and the
// delivery worker records it so at once, as a carrier's receipt would.
type Sender struct {
	store  verifyd.InboxStore
	sealer Sealer
	now    func() time.Time
}

var _ verifyd.FinalSender = (*Sender)(nil)

// New returns an inbox Sender.
func New(store verifyd.InboxStore, sealer Sealer, now func() time.Time) *Sender {
	return &Sender{store: store, sealer: sealer, now: now}
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
	return []string{fmt.Sprintf("inbox-%d", msg.ID)}, nil
}

// DeliversOnSend marks the inbox as a verifyd.FinalSender.
func (s *Sender) DeliversOnSend() {}

// Ready reports that the inbox can always take a message.
func (s *Sender) Ready() error { return nil }
