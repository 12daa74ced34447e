package verifyd

import (
	"context"
	"time"
)

// AccountStore keeps accounts.
type AccountStore interface {
	// CreateAccount inserts a and sets its ID; ECONFLICT if the name is taken.
	CreateAccount(ctx context.Context, a *Account) error
	// FindAccountByName returns ENOTFOUND for an unknown name.
	FindAccountByName(ctx context.Context, name string) (*Account, error)
	// ListAccounts returns every account, ordered by name.
	ListAccounts(ctx context.Context) ([]*Account, error)
	// UpdateAccount writes a's credential, Disabled flag and Settings;
	// ENOTFOUND for an unknown ID.
	UpdateAccount(ctx context.Context, a *Account) error
}

// VerificationStore keeps verifications and their outgoing messages.
type VerificationStore interface {
	// CreateVerification commits v, its message m (nil when nothing is sent)
	// and a charge to every limit in one transaction. When any limit is
	// exhausted nothing is written and the error is the Limit's Throttled
	// error for the longest wait. v.Created is "now" for the limits. A
	// duplicate id is ECONFLICT.
	//
	// Only LimitRate limits are charged. A LimitFailures limit refuses
	// while the run of wrong codes of v's number says so (see its doc), and
	// a run it finds over is forgotten in the same transaction; a
	// LimitBlocked limit refuses while a block with its Key lasts.
	CreateVerification(ctx context.Context, v *Verification, m *Message, limits []Limit) error
	// CreateVerificationWithAnswer is CreateVerification for a create that
	// carried an Idempotency-Key, reserved by BeginIdempotentRequest: when
	// the create commits, so does answer (its key's record, Done, with the
	// create's 202), in the same transaction. A key's record is then Done
	// exactly when its create committed, so a record still running past
	// IdempotencyLease belongs to a request that died before committing,
	// and running it anew sends nothing twice. When the key no longer holds
	// answer's reservation (answer.Token), because a retry took it over
	// after the lease, nothing is written and the error is ECONFLICT: the
	// retry sends the code.
	CreateVerificationWithAnswer(ctx context.Context, v *Verification, m *Message, limits []Limit, answer *IdempotentRequest) error
	// FindVerification returns the account's verification with its Delivery;
	// ENOTFOUND for an unknown id or another account's.
	FindVerification(ctx context.Context, accountID int64, id string) (*Verification, error)
	// UpdateVerification runs fn on the current row and writes back State,
	// Attempts, Verified and Updated, atomically with respect to every other
	// update of the same row in any process. When fn returns an error
	// nothing is written and that error is returned. fn must be quick and
	// must not call the store: a store may run it inside its only writer.
	// When the state becomes
	// Cancelled, a message still Queued is withdrawn (DeliveryFailed,
	// "cancelled") and its text wiped.
	//
	// In the same transaction it keeps the run of wrong codes of the
	// account's number that LimitFailures judges: when fn raised Attempts
	// the run grows by one (its last wrong code at Updated), and when fn
	// made the state Verified the run is over. fn finds the run as the
	// update read it in Verification.Run. (On PostgreSQL, where a group of
	// validates reads its rows together and instances do not lock a run
	// before their write, validates of one number's requests at the same
	// moment may each find the run as it was before the others.)
	UpdateVerification(ctx context.Context, accountID int64, id string, fn func(*Verification) error) (*Verification, error)
	// PurgeVerifications deletes verifications (and their messages) created
	// before their account's retention ended, limit buckets that ran out,
	// runs of wrong codes over by their account's failure cooldown,
	// conversion counts older than WatchWindow, blocks that ended and dev
	// inbox messages older than InboxRetention, as of now. It returns how
	// many verifications went.
	PurgeVerifications(ctx context.Context, now time.Time) (int, error)
}

// LimitStore shows and clears what the send limits keep of one number, for
// an operator (verifyd limits show and reset). CreateVerification reads all
// of it afresh at each create, so a reset holds from the next send on.
type LimitStore interface {
	// ReadBuckets returns the stored bucket of each of keys (Limit.Key) that
	// has one, as the next create would judge it: a bucket whose sends have
	// all left the window but that no purge has deleted yet is returned too.
	// Keys without a bucket are absent.
	ReadBuckets(ctx context.Context, keys []string) (map[string]Bucket, error)
	// ReadRun returns the run of wrong codes of the account's number that
	// LimitFailures judges; the zero Run when there is none. A run that a
	// cooldown ended but that no create or purge has forgotten yet is
	// returned as kept.
	ReadRun(ctx context.Context, accountID int64, number string) (Run, error)
	// ResetNumber deletes, in one transaction, the buckets with keys (the
	// number's own: see NumberLimitNames) and the run of wrong codes of the
	// account's number. It returns what it deleted: the buckets by key, and
	// the run (the zero Run when there was none). Deleting nothing is no
	// error.
	ResetNumber(ctx context.Context, accountID int64, number string, keys []string) (map[string]Bucket, Run, error)
}

// Run is a number's run of consecutive wrong codes (see LimitFailures).
type Run struct {
	Failures int       // 0: no run
	Last     time.Time // the last wrong code
}

// MessageStore is the delivery queue: the outbox rows of CreateVerification.
type MessageStore interface {
	// ClaimMessages leases up to max due messages (Queued, NextAttempt at or
	// before now, any earlier lease passed) until now+lease, counting an
	// attempt on each. Due messages whose Deadline is not after now are not
	// returned: they become DeliveryExpired and their text is wiped. A
	// message is never returned to two claims while its lease holds.
	// Messages returned together with an error are leased all the same.
	ClaimMessages(ctx context.Context, now time.Time, lease time.Duration, max int) ([]*Message, error)
	// FinishMessages records the outcome of claimed messages in one
	// transaction, releases their leases, and matches any receipt that
	// arrived before its carrier id was known. A Delivered result (from a
	// FinalSender) records the message and its parts Delivered at once. A
	// message no longer Queued (cancelled meanwhile), or claimed again
	// since the claim a result names (MessageResult.Attempt), is left as it
	// is. Early receipts count in the order they came; a carrier id given
	// for two messages of one batch belongs to the later one.
	FinishMessages(ctx context.Context, results []MessageResult) error
	// RecordReceipt records a carrier's receipt against the message part
	// with that carrier id. A receipt for an id not yet known is kept and
	// matched when the id is recorded; the same receipt twice changes
	// nothing. It returns only once the receipt is durable. Each part's first
	// final receipt counts and intermediate ones change nothing; a message
	// is Delivered once every part is, and fails as soon as one part fails.
	// A provisional receipt (Receipt.Provisional) fails its part and message
	// only until the part's next definitive one replaces it: the message is
	// then worked out again from its parts.
	RecordReceipt(ctx context.Context, r Receipt) error
}

// InboxStore keeps the dev inbox.
type InboxStore interface {
	// AddInboxMessages stores messages and sets their IDs.
	AddInboxMessages(ctx context.Context, ms []*InboxMessage) error
	// ListInboxMessages returns up to limit messages to the number to ("" for
	// all), newest first, each with its verification's CodeMAC and
	// PhoneNumber (none once the verification is purged), in one query.
	ListInboxMessages(ctx context.Context, to string, limit int) ([]*InboxMessage, error)
}

// IdempotencyStore remembers creates that carried an Idempotency-Key.
type IdempotencyStore interface {
	// BeginIdempotentRequest reserves (r.AccountID, r.Key). It returns nil
	// when the key was free (the caller now runs the request), or the record
	// already there, whether Done or still running. Records older than
	// 24 hours count as free, and so do records still running after
	// IdempotencyLease: their request died (see CreateVerificationWithAnswer).
	// The reservation is named by r.Token; a record returned carries none.
	// An error may hide a reservation that committed (its answer lost):
	// its request releases it by its token.
	BeginIdempotentRequest(ctx context.Context, r *IdempotentRequest) (*IdempotentRequest, error)
	// FinishIdempotentRequest stores the answer of the reservation named by
	// r.Token, or with r.Status 0 releases it so that a retry runs anew,
	// unless its create committed and recorded its answer: a create
	// answered 5xx after its commit (a connection lost on the way back) is
	// then replayed, not sent again. A reservation another request made (a
	// retry after the lease, a double-submit in the same millisecond), or
	// none at all, is left alone.
	FinishIdempotentRequest(ctx context.Context, r *IdempotentRequest) error
}

// KeyStore remembers which server key the database is written under.
type KeyStore interface {
	// BindServerKey records fingerprint (otp.Keyring.Fingerprint) when the
	// database has none yet, or when replace is set; otherwise it returns
	// ECONFLICT if the recorded one differs. Of two first callers at once,
	// one records and the other is compared with it.
	BindServerKey(ctx context.Context, fingerprint []byte, replace bool) error
}

// Store is everything the server keeps. sqlite.Store and postgres.Store
// implement it, and storetest checks both the same way.
type Store interface {
	AccountStore
	VerificationStore
	LimitStore
	MessageStore
	InboxStore
	IdempotencyStore
	WatchStore
	KeyStore
	// Ping reports whether the database answers (EUNAVAILABLE if not).
	Ping(ctx context.Context) error
	Close() error
}
