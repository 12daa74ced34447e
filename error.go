package verifyd

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. The http package maps each to an HTTP status in one table;
// anything that is not an *Error becomes a 500 whose cause is logged, never
// echoed.
const (
	EINVALID      = "invalid"      // 400: see Failures
	EUNAUTHORIZED = "unauthorized" // 401
	EFORBIDDEN    = "forbidden"    // 403: credentials that are not a route's own (a receipt's token), an inbox request under a foreign Host
	ENOTFOUND     = "not_found"    // 404
	ECONFLICT     = "conflict"     // 409
	EMISMATCH     = "mismatch"     // 422: an idempotency key reused with another body
	ETOOLARGE     = "too_large"    // 413
	EUNAVAILABLE  = "unavailable"  // 503: a dependency (the database) is down
	EINTERNAL     = "internal"     // 500
)

// Failure codes of a 400 answer's ValidationFailure objects. The first group
// is Comapi's; the extensions are marked.
const (
	FailInvalidJSON              = "InvalidJson"
	FailToEmpty                  = "ToEmpty"
	FailToInvalid                = "ToInvalid"
	FailCountryIsoCodeInvalid    = "CountryIsoCodeInvalid"
	FailFromEmpty                = "FromEmpty"
	FailFromUnderMinTextLength   = "FromUnderMinTextLength"
	FailFromExceedsMaxNumericLen = "FromExceedsMaxNumericLength"
	FailFromDisallowedCharacters = "FromContainsDisallowedCharacters"
	FailFromExceedsMaxTextLength = "FromExceedsMaxTextLength"
	FailFromReserved             = "FromReserved"
	FailValidUntilMinExceeded    = "ValidUntilMinExceeded"
	FailValidUntilMaxExceeded    = "ValidUntilMaxExceeded"
	FailThrottled                = "Throttled"
	FailBodyInvalid              = "BodyInvalid"        // extension
	FailCodeInvalid              = "CodeInvalid"        // extension
	FailCredentialsInQuery       = "CredentialsInQuery" // extension
	FailCountryNotAllowed        = "CountryNotAllowed"  // extension
	FailNumberTypeNotAllowed     = "NumberTypeNotAllowed"
)

// Failure is one ValidationFailure of a 400 answer.
type Failure struct {
	Property string `json:"property"`
	Code     string `json:"failureCode"`
	Details  string `json:"details"`
}

// Error is the one error type of the product. Message is safe to show to a
// client; it never holds a code, a secret or a driver's text.
type Error struct {
	Code     string
	Message  string
	Failures []Failure // for EINVALID
	// RetryAfter is set for a refused send (FailThrottled).
	RetryAfter time.Duration
	// Limit names the send limit that refused it (FailThrottled), for
	// metrics and logs.
	Limit string
}

func (e *Error) Error() string {
	if len(e.Failures) > 0 {
		return fmt.Sprintf("verifyd: %s: %s (%s)", e.Code, e.Message, e.Failures[0].Code)
	}
	return fmt.Sprintf("verifyd: %s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error carrying the given failures.
func Invalid(failures ...Failure) *Error {
	return &Error{Code: EINVALID, Message: "the request is not valid", Failures: failures}
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, else
// EINTERNAL.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return EINTERNAL
}
