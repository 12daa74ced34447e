package verifyd

import "time"

// Policy bounds that no account setting can pass.
const (
	// MaxValidity is the longest a code may live (Comapi's cap).
	MaxValidity = 30 * time.Minute
	// DefaultValidity is how long a code lives when the request does not say.
	DefaultValidity = 10 * time.Minute
	// DefaultMaxAttempts is how many wrong codes lock a request.
	DefaultMaxAttempts = 5
	// DefaultCodeLength is the number of digits in a code.
	DefaultCodeLength = 6
	// MinCodeLength and MaxCodeLength bound an account's codeLength.
	MinCodeLength, MaxCodeLength = 4, 10
	// DefaultRetention is how long a verification stays readable after its
	// creation.
	DefaultRetention = 30 * 24 * time.Hour
	// InboxRetention is how long the dev inbox keeps a message: a developer
	// reads a code within minutes, and a dev server left running for months
	// should not keep every message it ever took.
	InboxRetention = 7 * 24 * time.Hour
)

// Attempt applies one validate with a well-formed code to v at time now;
// match reports whether the code was right. It returns the answer's status,
// or ok=false when the verification is already finished (the answer is then
// 204 and v is unchanged).
//
// The order matters: expiry is judged before the code, so a right code after
// the validity answers CodeExpired; a request locked by its last wrong code
// stays locked, so its right code never succeeds afterwards.
func (v *Verification) Attempt(now time.Time, match bool) (status Status, ok bool) {
	if v.State.Finished() {
		return "", false
	}
	if v.Expire(now) {
		return CodeExpired, true
	}
	v.Updated = now
	if match {
		v.State = StateVerified
		v.Verified = now
		return CodeVerified, true
	}
	v.Attempts++
	if v.Attempts >= v.MaxAttempts {
		v.State = StateLocked
		return CodeLocked, true
	}
	return CodeNotVerified, true
}

// LockOut ends a pending verification Locked without judging a code: its
// number's run of wrong codes is at the account's failures limit, and one
// more guess could make it longer (Settings.RunAtCap). As in Attempt, an
// ended validity comes first. ok=false when it is already finished.
func (v *Verification) LockOut(now time.Time) (status Status, ok bool) {
	if v.State.Finished() {
		return "", false
	}
	if v.Expire(now) {
		return CodeExpired, true
	}
	v.State, v.Updated = StateLocked, now
	return CodeLocked, true
}

// Cancel withdraws a pending verification. It reports whether anything
// changed; cancelling a finished request is a no-op. A request whose
// validity has already ended is recorded Expired, not Cancelled: it ended
// before the cancel came.
func (v *Verification) Cancel(now time.Time) bool {
	if v.State.Finished() {
		return false
	}
	if v.Expire(now) {
		return true
	}
	v.State = StateCancelled
	v.Updated = now
	return true
}

// Expire makes a pending verification whose validity has ended at now
// Expired, and reports whether it did. A stored request stays Pending
// until a validate or a cancel writes its expiry; a record read for
// display is expired first, so that it shows what any validate would
// answer.
func (v *Verification) Expire(now time.Time) bool {
	if v.State != StatePending || now.Before(v.ValidUntil) {
		return false
	}
	v.State = StateExpired
	v.Updated = now
	return true
}

// AttemptsRemaining is how many wrong codes the request still takes.
func (v *Verification) AttemptsRemaining() int {
	if v.State.Finished() {
		return 0
	}
	if n := v.MaxAttempts - v.Attempts; n > 0 {
		return n
	}
	return 0
}

// CreateStatus is the status a create answers with.
func (v *Verification) CreateStatus() Status {
	if v.State == StateNotSent {
		return CodeNotSent
	}
	return CodeNotVerified
}
