// Package verifyd is the domain of a self-hosted phone verification service:
// an application asks it to text a one-time code to a phone number, then asks
// whether the code its user typed is right.
//
// This package holds the nouns (Account, Verification, Message), their
// lifecycle rules, the one error type, and the small interfaces that the
// adapter packages implement: the stores (sqlite/, postgres/), the senders
// (inbox/, smpp/) and the number lookup (phone/). It imports nothing but the
// standard library.
package verifyd

import "time"

// State is where a verification is in its life. Every state but Pending is
// final: a finished verification answers every later validate with 204.
type State string

// The states of a verification, as GET /webapi/verify/{id} shows them.
const (
	StatePending   State = "Pending"
	StateVerified  State = "Verified"
	StateLocked    State = "Locked"
	StateExpired   State = "Expired"
	StateCancelled State = "Cancelled"
	StateNotSent   State = "NotSent"
)

// Finished reports whether no further validate can change the verification.
func (s State) Finished() bool { return s != StatePending }

// Status is the Comapi VerifyCode status of one answer.
type Status string

// The Comapi statuses.
const (
	CodeNotVerified Status = "CodeNotVerified"
	CodeNotSent     Status = "CodeNotSent"
	CodeVerified    Status = "CodeVerified"
	CodeLocked      Status = "CodeLocked"
	CodeExpired     Status = "CodeExpired"
)

// NumberStatus is what the number lookup says about the handset.
type NumberStatus string

// The Comapi number statuses.
const (
	NumberOn             NumberStatus = "On"
	NumberOff            NumberStatus = "Off"
	NumberDead           NumberStatus = "Dead"
	NumberNotProvisioned NumberStatus = "NotProvisioned"
)

// Verification is one request to prove control of a phone number.
type Verification struct {
	ID           string // random UUID v4, lowercase
	AccountID    int64
	PhoneNumber  string // digits only, international form, no '+'
	Country      string // ISO 3166-1 alpha-2 region of the number
	NumberStatus NumberStatus
	State        State
	// CodeMAC is HMAC-SHA256(server key, id || number || code); the code
	// itself is never stored.
	CodeMAC     []byte
	Attempts    int // wrong codes so far
	MaxAttempts int // wrong codes that lock the request
	Created     time.Time
	ValidUntil  time.Time
	Verified    time.Time // zero unless State is StateVerified
	Updated     time.Time

	// Delivery is the state of its outgoing message; nil when nothing was
	// sent (StateNotSent). Stores fill it in on reads only.
	Delivery *Delivery
	// Run is the run of wrong codes of its number, as UpdateVerification
	// read it for fn (Settings.RunAtCap); zero on every other read.
	Run Run
}

// DeliveryState is where the outgoing message of a verification is.
type DeliveryState string

// The delivery states. Queued is the only one a worker acts on; Submitted is
// waiting for a receipt; the rest are final.
const (
	DeliveryQueued        DeliveryState = "Queued"
	DeliverySubmitted     DeliveryState = "Submitted"
	DeliveryDelivered     DeliveryState = "Delivered"
	DeliveryUndeliverable DeliveryState = "Undeliverable"
	DeliveryExpired       DeliveryState = "Expired"
	DeliveryFailed        DeliveryState = "Failed"
)

// Delivery is the public view of a message's progress.
type Delivery struct {
	State     DeliveryState
	CarrierID string // the carrier's message id (first part's, for long texts)
	Error     string // a short reason when the state is a failure
	Updated   time.Time
}

// Message is a verification's outgoing SMS: the outbox row that is also the
// delivery queue entry. It is keyed by the verification's ID: one request, one
// message, always with the same text.
type Message struct {
	RequestID string
	AccountID int64
	To        string // digits, international form
	From      string
	// Sealed is the text sealed with the server key (AEAD, the request id as
	// associated data). It is wiped once handed over or expired.
	Sealed      []byte
	Attempts    int       // hand-overs tried so far, counted at claim time
	NextAttempt time.Time // not claimed before this
	Deadline    time.Time // never handed over after this (the verification's ValidUntil)
	Created     time.Time
}

// MessageResult is what a delivery worker learned about one claimed message.
type MessageResult struct {
	RequestID string
	// State is DeliveryQueued to try again at NextAttempt, or DeliverySubmitted,
	// DeliveryFailed or DeliveryExpired, or DeliveryDelivered from a
	// FinalSender. For every state but Queued the sealed text is wiped.
	State       DeliveryState
	CarrierIDs  []string // one per part, when Submitted or Delivered
	Error       string
	NextAttempt time.Time
	At          time.Time
	// Attempt is the message's Attempts as the claim that produced this
	// result returned it; the result is recorded only while no later claim
	// has taken the message. 0 records it whichever claim holds it.
	Attempt int
}

// Receipt is a carrier's report on one submitted message part.
type Receipt struct {
	CarrierID string // normalised by the sender (see smpp.NormalizeID)
	State     DeliveryState
	Error     string
	At        time.Time
	// Provisional marks a failure the carrier itself is unsure of (SMPP's
	// UNKNOWN): it shows at once, but a later final receipt for the same
	// part replaces it, where a part's first definitive one stands.
	Provisional bool
}

// InboxMessage is a message the dev inbox "sent". Its text is sealed like
// the outbox text, so no code reaches the disk in plaintext.
type InboxMessage struct {
	ID        int64
	RequestID string
	To        string
	From      string
	Sealed    []byte
	Created   time.Time
	// CodeMAC and PhoneNumber are those of the message's verification, as
	// listed (nil and "" when it was purged): they tell which digits of the
	// text are its code, so the inbox page need not guess.
	CodeMAC     []byte
	PhoneNumber string
}

// Number is a parsed, valid phone number.
type Number struct {
	Digits   string // E.164 without '+'
	Region   string // ISO 3166-1 alpha-2, e.g. "GB"
	LineType LineType
}

// LineType is libphonenumber's classification of a number.
type LineType string

// The line types the built-in lookup distinguishes.
const (
	LineMobile        LineType = "mobile"
	LineFixedOrMobile LineType = "fixed_line_or_mobile"
	LineFixed         LineType = "fixed_line"
	LineVoIP          LineType = "voip"
	LineTollFree      LineType = "toll_free"
	LinePremiumRate   LineType = "premium_rate"
	LineSharedCost    LineType = "shared_cost"
	LinePersonal      LineType = "personal_number"
	LinePager         LineType = "pager"
	LineUAN           LineType = "uan"
	LineVoicemail     LineType = "voicemail"
	LineUnknown       LineType = "unknown"
)

// IdempotencyLease is how long a key's first request may run before its
// key counts as free again: far longer than any request lives (the server's
// write timeout is 30 seconds), so only a request whose server died is
// outlived.
const IdempotencyLease = 5 * time.Minute

// ErrIdempotencyKeyRunning answers a create whose Idempotency-Key another
// request holds: one still running, or one that took the key over after
// this request outlived its lease (that one sends the code).
var ErrIdempotencyKeyRunning error = Errorf(ECONFLICT, "A request with this Idempotency-Key is still running; retry later.")

// IdempotentRequest remembers the first answer to a create that carried an
// Idempotency-Key header, for 24 hours.
type IdempotentRequest struct {
	AccountID int64
	Key       string
	BodyHash  []byte // SHA-256 of the request body
	Done      bool   // false while the first request is still running
	Status    int    // the HTTP status of the first answer, once Done
	Response  []byte // the body of the first answer, once Done
	Created   time.Time
	// Token is drawn at random for each reservation, and names it: only
	// its own request records an answer on it or releases it. Its time
	// cannot, as two double-submits may land in one millisecond, and a
	// request whose reservation's answer was lost knows no other name for
	// it. Nil names none (a record stored before tokens).
	Token []byte
}
