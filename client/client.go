// Package client is a Go client for the verifyd API (and any Comapi Verify
// compatible service): send a code, validate it, read or cancel a request.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client talks to one verifyd server as one account. The credentials go in
// an Authorization header, never in a URL.
type Client struct {
	// BaseURL is the server's http or https URL, e.g.
	// "http://127.0.0.1:8080", optionally with a path prefix. It may not
	// hold credentials, a query or a fragment.
	BaseURL  string
	User     string
	Password string
	// HTTP is the client used for requests; nil means a client with a 30 s
	// timeout.
	HTTP *http.Client
}

// SendRequest is the body of a create. Only To is required.
type SendRequest struct {
	To             string     `json:"to"`
	From           string     `json:"from,omitempty"`
	CountryIsoCode string     `json:"countryIsoCode,omitempty"`
	Body           string     `json:"body,omitempty"`
	ValidUntil     *time.Time `json:"validUntil,omitempty"`
	// IdempotencyKey, when set, makes a retried send return the first answer
	// instead of sending a second code.
	IdempotencyKey string `json:"-"`
}

// VerifyCode is the answer to a create or a validate.
type VerifyCode struct {
	RequestID    string     `json:"requestId"`
	PhoneNumber  string     `json:"phoneNumber"`
	Status       string     `json:"status"`
	NumberStatus string     `json:"numberStatus"`
	Created      time.Time  `json:"created"`
	Verified     *time.Time `json:"verified,omitempty"`
	// Replayed is true when the answer is the server's stored first answer
	// to a repeated Idempotency-Key (header Idempotent-Replayed): no new
	// code was sent.
	Replayed bool `json:"-"`
}

// The statuses of a VerifyCode.
const (
	CodeNotVerified = "CodeNotVerified"
	CodeNotSent     = "CodeNotSent"
	CodeVerified    = "CodeVerified"
	CodeLocked      = "CodeLocked"
	CodeExpired     = "CodeExpired"
	// Finished is what Validate reports for a 204: the request is unknown or
	// already finished.
	Finished = "Finished"
)

// Failure is one ValidationFailure of a 400 answer. Its Code is one of the
// verifyd.Fail* constants, e.g. "ToInvalid" or "Throttled".
type Failure struct {
	Property string `json:"property"`
	Code     string `json:"failureCode"`
	Details  string `json:"details"`
}

// Error is a refused request.
type Error struct {
	StatusCode int
	// Failures are the ValidationFailures of a 400, and the one InvalidJson
	// failure of a 413 (a body over 64 KiB).
	Failures []Failure
	// RetryAfter is the Retry-After header (a Throttled 400, or a 429 or
	// 503 from a proxy in front of the server); 0 when there is none.
	RetryAfter time.Duration
	// Code is the code of a JSON error answer (404, 405, 409, 422, 5xx):
	// not_found, method_not_allowed, conflict, mismatch, internal or
	// unavailable. It is empty for 400, 401 and 413.
	Code    string
	Message string
}

func (e *Error) Error() string {
	if len(e.Failures) > 0 {
		parts := make([]string, len(e.Failures))
		for i, f := range e.Failures {
			parts[i] = fmt.Sprintf("%s (%s): %s", f.Code, f.Property, f.Details)
		}
		return fmt.Sprintf("verifyd: %d: %s", e.StatusCode, strings.Join(parts, "; "))
	}
	return fmt.Sprintf("verifyd: %d: %s", e.StatusCode, e.Message)
}

// Has reports whether the error carries the failure code.
func (e *Error) Has(code string) bool {
	for _, f := range e.Failures {
		if f.Code == code {
			return true
		}
	}
	return false
}

// Send asks the server to text a code to r.To.
func (c *Client) Send(ctx context.Context, r SendRequest) (*VerifyCode, error) {
	var out VerifyCode
	hdr := http.Header{}
	if r.IdempotencyKey != "" {
		hdr.Set("Idempotency-Key", r.IdempotencyKey)
	}
	resp, err := c.do(ctx, http.MethodPost, "/webapi/verify", hdr, r, &out)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusAccepted {
		return nil, unexpected(resp.StatusCode)
	}
	out.Replayed = resp.Header.Get("Idempotent-Replayed") == "true"
	return &out, nil
}

// unexpected is a success status the contract does not give for the call.
func unexpected(status int) *Error {
	return &Error{StatusCode: status, Message: "unexpected status"}
}

// segment reports whether a request id reaches the server as the one path
// segment it must be. The server decodes and cleans the path before
// routing, so an empty id, "." or "..", or one holding a slash would reach
// another route; such an id is answered here as the server answers a
// malformed one.
func segment(requestID string) bool {
	return requestID != "" && requestID != "." && requestID != ".." && !strings.Contains(requestID, "/")
}

// Validate checks code against the request. A request that is unknown,
// malformed or already finished answers with Status Finished.
func (c *Client) Validate(ctx context.Context, requestID, code string) (*VerifyCode, error) {
	finished := &VerifyCode{RequestID: requestID, Status: Finished}
	if !segment(requestID) {
		if err := c.check(); err != nil {
			return nil, err
		}
		return finished, nil
	}
	var out VerifyCode
	resp, err := c.do(ctx, http.MethodPut, "/webapi/verify/"+url.PathEscape(requestID)+"/validate", nil,
		map[string]string{"code": code}, &out)
	switch {
	case err != nil:
		return nil, err
	case resp.StatusCode == http.StatusNoContent:
		return finished, nil
	case resp.StatusCode != http.StatusOK:
		return nil, unexpected(resp.StatusCode)
	}
	return &out, nil
}

// Record is the full state of a request (GET /webapi/verify/{id}).
type Record struct {
	RequestID         string     `json:"requestId"`
	PhoneNumber       string     `json:"phoneNumber"`
	State             string     `json:"state"` // Pending, Verified, Locked, Expired, Cancelled, NotSent
	NumberStatus      string     `json:"numberStatus"`
	Created           time.Time  `json:"created"`
	ValidUntil        time.Time  `json:"validUntil"`
	Verified          *time.Time `json:"verified,omitempty"`
	AttemptsRemaining int        `json:"attemptsRemaining"`
	Delivery          *struct {
		State     string    `json:"state"` // Queued, Submitted, Delivered, Undeliverable, Expired, Failed
		MessageID string    `json:"messageId"`
		Error     string    `json:"error"`
		Updated   time.Time `json:"updated"`
	} `json:"delivery,omitempty"`
}

// Get reads a request's record; an unknown or malformed request is an
// *Error with StatusCode 404.
func (c *Client) Get(ctx context.Context, requestID string) (*Record, error) {
	if !segment(requestID) {
		if err := c.check(); err != nil {
			return nil, err
		}
		return nil, &Error{StatusCode: http.StatusNotFound, Code: "not_found", Message: "There is no verification with that requestId."}
	}
	var out Record
	resp, err := c.do(ctx, http.MethodGet, "/webapi/verify/"+url.PathEscape(requestID), nil, nil, &out)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, unexpected(resp.StatusCode)
	}
	return &out, nil
}

// Cancel withdraws a pending request. The server answers the same whether
// or not the request existed or was pending, so nil says only that no
// pending request with that id is left.
func (c *Client) Cancel(ctx context.Context, requestID string) error {
	if !segment(requestID) {
		return c.check()
	}
	_, err := c.do(ctx, http.MethodDelete, "/webapi/verify/"+url.PathEscape(requestID), nil, nil, nil)
	return err
}

// check refuses a BaseURL the client cannot use, and one that would put
// credentials (or anything else) in the URLs it sends.
func (c *Client) check() error {
	u, err := url.Parse(c.BaseURL)
	switch {
	case err != nil:
		// The parser's error quotes the whole URL, which may hold
		// credentials; what it found wrong is enough.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("verifyd: BaseURL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return errors.New("verifyd: BaseURL must be an http or https URL with a host, such as http://127.0.0.1:8080")
	case u.User != nil:
		return errors.New("verifyd: BaseURL must not hold credentials; set User and Password")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return errors.New("verifyd: BaseURL must not have a query or a fragment")
	}
	return nil
}

// do sends one request and reads its answer: a 2xx body into out (a 204
// has none), anything else into an *Error.
func (c *Client) do(ctx context.Context, method, path string, hdr http.Header, body, out any) (*http.Response, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(c.User, c.Password)
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusNoContent:
		return resp, nil
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				return nil, fmt.Errorf("verifyd: reading the %d answer: %w", resp.StatusCode, err)
			}
		}
		return resp, nil
	}
	e := &Error{StatusCode: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	// A 400 and a 413 are arrays of failures; every other JSON error is an
	// object with a code and a message; a 401 is text.
	if json.Unmarshal(data, &e.Failures) == nil && len(e.Failures) > 0 {
		return nil, e
	}
	e.Failures = nil
	var msg struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &msg) == nil && msg.Message != "" {
		e.Code, e.Message = msg.Code, msg.Message
	} else {
		e.Message = strings.TrimSpace(string(data))
	}
	return nil, e
}

// retryAfter reads a Retry-After header: whole seconds, or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.ParseInt(h, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(365*24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now).Round(time.Second)
	}
	return 0
}

// AsError returns err as an *Error when it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
