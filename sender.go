package verifyd

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SMS is one text to hand to a carrier.
type SMS struct {
	RequestID  string // stable across retries, so a sender may deduplicate
	To         string // digits, international form
	From       string
	Text       string
	ValidUntil time.Time // the carrier must not deliver after this
}

// Sender hands texts to a carrier (smpp/), or to the dev inbox (inbox/).
type Sender interface {
	// Send hands m over and returns the carrier's ids, one per part. A
	// failure is a *SendError saying whether to try again.
	Send(ctx context.Context, m *SMS) ([]string, error)
	// Ready reports whether the sender can send now (for /readyz).
	Ready() error
}

// A FinalSender is a Sender whose successful Send has already delivered
// the text: the dev inbox. The delivery worker records its messages
// Delivered at once, parts and all, where another sender's wait Submitted
// for their receipts.
type FinalSender interface {
	Sender
	// DeliversOnSend marks the kind; it does nothing.
	DeliversOnSend()
}

// ReceiptRecorder takes the receipts a sender gets back from its carrier.
// A sender acknowledges a receipt to the carrier only after Record returns
// nil.
type ReceiptRecorder interface {
	RecordReceipt(ctx context.Context, r Receipt) error
}

// SendErrorKind says what a delivery worker does after a failed hand-over.
type SendErrorKind int

// The kinds of send failures.
const (
	// SendTemporary: try again later with backoff, until the deadline.
	SendTemporary SendErrorKind = iota
	// SendThrottled: the carrier asked us to slow down; try again soon, and
	// do not count it as the message's fault.
	SendThrottled
	// SendPermanent: never try again; the delivery has Failed.
	SendPermanent
)

// SendError is a failed hand-over.
type SendError struct {
	Kind   SendErrorKind
	Reason string // short, safe to store and show: "ESME_RINVDSTADR"
	Err    error  // the cause, for logs
}

func (e *SendError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("send: %s: %v", e.Reason, e.Err)
	}
	return "send: " + e.Reason
}

func (e *SendError) Unwrap() error { return e.Err }

// SendErrorOf classifies err: a *SendError as it says, anything else as
// temporary.
func SendErrorOf(err error) *SendError {
	var se *SendError
	if errors.As(err, &se) {
		return se
	}
	return &SendError{Kind: SendTemporary, Reason: "send failed", Err: err}
}

// NumberLookup tells what state a handset is in.
type NumberLookup interface {
	LookupNumber(ctx context.Context, n Number) (NumberStatus, error)
}
