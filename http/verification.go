package http

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"verifyd"
	"verifyd/otp"
	"verifyd/phone"
)

// verifyCode is Comapi's VerifyCode answer.
type verifyCode struct {
	RequestID    string               `json:"requestId"`
	PhoneNumber  string               `json:"phoneNumber"`
	Status       verifyd.Status       `json:"status"`
	NumberStatus verifyd.NumberStatus `json:"numberStatus"`
	Created      timestamp            `json:"created"`
	Verified     *timestamp           `json:"verified,omitempty"`
}

// handleCreate is POST /webapi/verify: check the request, draw a code, and
// commit the verification and its message in one transaction.
func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request, a *verifyd.Account) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	// A key sent twice, or sent empty (idempotent refuses that), is a
	// client's mistake: taking the first, or none, would leave a client
	// that believes its retries safe sending a second code.
	if keys := r.Header.Values("Idempotency-Key"); len(keys) > 0 {
		if len(keys) > 1 {
			return verifyd.Invalid(verifyd.Failure{Property: "Idempotency-Key", Code: verifyd.FailInvalidJSON,
				Details: "The Idempotency-Key header must be sent once, with one key."})
		}
		return s.idempotent(w, r, a, keys[0], body, func(w http.ResponseWriter, reserved *verifyd.IdempotentRequest) error {
			return s.create(w, r, a, body, reserved)
		})
	}
	return s.create(w, r, a, body, nil)
}

// create runs one create whose body has been read. reserved, when set, is
// its Idempotency-Key's record: the create records its 202 on it in its own
// transaction.
func (s *Server) create(w http.ResponseWriter, r *http.Request, a *verifyd.Account, body []byte, reserved *verifyd.IdempotentRequest) error {
	ctx := r.Context()
	now := s.now().UTC()
	in, ferr := judgeCreate(body, a, s.cfg.DefaultFrom, s.cfg.Charset, now)
	if ferr != nil {
		return ferr
	}
	n := in.number
	addLog(ctx, slog.String("to", phone.Mask(n.Digits)))

	status, test, err := s.numberStatus(ctx, a, n)
	if err != nil {
		return err
	}
	if status == verifyd.NumberNotProvisioned && a.Settings.BlockLandlines {
		return verifyd.Invalid(verifyd.Failure{Property: "to", Code: verifyd.FailNumberTypeNotAllowed,
			Details: "This account may only send codes to mobile numbers."})
	}

	var id, code string
	err = s.draw(func(r io.Reader) error {
		var err error
		if id, err = newRequestID(r); err != nil {
			return err
		}
		if test != nil && test.Code != "" {
			code = test.Code
			return nil
		}
		code, err = otp.Draw(r, a.Settings.CodeLen())
		return err
	})
	if err != nil {
		return err
	}

	v := &verifyd.Verification{
		ID:           id,
		AccountID:    a.ID,
		PhoneNumber:  n.Digits,
		Country:      n.Region,
		NumberStatus: status,
		State:        verifyd.StatePending,
		CodeMAC:      s.cfg.Keyring.MAC(id, n.Digits, code),
		MaxAttempts:  a.Settings.Attempts(),
		Created:      now,
		ValidUntil:   in.validUntil,
		Updated:      now,
	}
	var m *verifyd.Message
	if status == verifyd.NumberDead {
		// Nothing is sent to a dead number; the record says so and a later
		// validate answers 204.
		v.State = verifyd.StateNotSent
	} else {
		text := []byte(otp.Render(in.template, code, validMinutes(now, in.validUntil)))
		m = &verifyd.Message{
			RequestID:   id,
			AccountID:   a.ID,
			To:          n.Digits,
			From:        in.from,
			Sealed:      s.cfg.Keyring.Seal(id, text),
			NextAttempt: now,
			Deadline:    in.validUntil,
			Created:     now,
		}
		clear(text)
	}
	limits := verifyd.SendLimits(a, n, s.clientIP(r))
	if test != nil {
		// A test number is for checks: it counts toward no limit, and its
		// message never reaches the sender.
		limits = nil
		holdTestMessage(m)
	}
	// Encoded once: the same bytes are recorded on an Idempotency-Key and
	// sent.
	answer := mustMarshal(verifyCode{
		RequestID:    v.ID,
		PhoneNumber:  v.PhoneNumber,
		Status:       v.CreateStatus(),
		NumberStatus: v.NumberStatus,
		Created:      timestamp(v.Created),
	})
	if reserved != nil {
		done := *reserved
		done.Done, done.Status, done.Response = true, http.StatusAccepted, answer
		err = s.cfg.Store.CreateVerificationWithAnswer(ctx, v, m, limits, &done)
	} else {
		err = s.cfg.Store.CreateVerification(ctx, v, m, limits)
	}
	if err != nil {
		if name, ok := refusingLimit(err); ok {
			// The request's log line already holds the masked number; the
			// limit's name says why it was refused.
			addLog(ctx, slog.String("limit", name))
			s.observer().Throttled(name)
		} else {
			// The store failed: the create may still have committed.
			addLog(ctx, slog.String("requestId", id))
		}
		return err
	}
	addLog(ctx, slog.String("requestId", id))
	s.observer().Created(v)
	if test != nil {
		if err := s.finishTestMessage(ctx, m, test.Delivery, now); err != nil {
			return err
		}
	} else if m != nil && s.cfg.Wake != nil {
		s.cfg.Wake()
	}
	writeJSONBytes(w, http.StatusAccepted, answer)
	return nil
}

// newRequestID draws a random UUID version 4, lowercase and hyphenated.
func newRequestID(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], nil
}

// isRequestID reports whether id has the form newRequestID writes, so that
// a malformed id is answered without a database read.
func isRequestID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// errFinished stops an update that has nothing to change: the request is
// finished, and the answer is 204.
var errFinished = errors.New("verification finished")

// validateBody is the validate request as sent.
type validateBody struct {
	Code json.RawMessage `json:"code"`
}

// handleValidate is PUT (or POST) /webapi/verify/{id}/validate: judge the
// body, then apply one attempt atomically.
func (s *Server) handleValidate(w http.ResponseWriter, r *http.Request, a *verifyd.Account) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	code, ferr := judgeCode(body, a.Settings.CodeLen())
	if ferr != nil {
		return ferr
	}
	id := r.PathValue("id")
	addLog(r.Context(), slog.String("requestId", id))
	if !isRequestID(id) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	var status verifyd.Status
	v, err := s.cfg.Store.UpdateVerification(r.Context(), a.ID, id, func(v *verifyd.Verification) error {
		now := s.now().UTC()
		var (
			st verifyd.Status
			ok bool
		)
		if a.Settings.RunAtCap(v.PhoneNumber, v.Run, now) {
			st, ok = v.LockOut(now)
		} else {
			match := s.cfg.Keyring.Equal(s.cfg.Keyring.MAC(v.ID, v.PhoneNumber, code), v.CodeMAC)
			st, ok = v.Attempt(now, match)
		}
		if !ok {
			return errFinished
		}
		status = st
		return nil
	})
	if errors.Is(err, errFinished) || verifyd.ErrorCode(err) == verifyd.ENOTFOUND {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	addLog(r.Context(), slog.String("result", string(status)))
	s.observer().Validated(v, status)
	answer := verifyCode{
		RequestID:    v.ID,
		PhoneNumber:  v.PhoneNumber,
		Status:       status,
		NumberStatus: v.NumberStatus,
		Created:      timestamp(v.Created),
	}
	if status == verifyd.CodeVerified {
		t := timestamp(v.Verified)
		answer.Verified = &t
	}
	writeJSON(w, http.StatusOK, answer)
	return nil
}

// judgeCode reads the code of a validate body: a string (spaces around it
// trimmed) or a JSON number (left-padded with zeros), of exactly length
// digits.
func judgeCode(body []byte, length int) (string, *verifyd.Error) {
	var req validateBody
	if err := decodeObject(body, &req); err != nil {
		return "", err
	}
	var code string
	switch jsonKind(req.Code) {
	case "", "null":
		return "", invalidJSON("code", "code is required: the code the user typed.")
	case "string":
		if err := json.Unmarshal(req.Code, &code); err != nil {
			return "", invalidJSON("code", "code must be a string of digits.")
		}
		code = strings.TrimSpace(code)
		if code == "" {
			return "", invalidJSON("code", "code is required: the code the user typed.")
		}
	case "number":
		// The literal as sent: a JSON number cannot carry leading zeros, so
		// they are put back. A sign, fraction or exponent fails below.
		code = strings.TrimSpace(string(req.Code))
		if verifyd.IsDigits(code) && len(code) < length {
			code = strings.Repeat("0", length-len(code)) + code
		}
	default:
		return "", invalidJSON("code", "code must be a string of digits.")
	}
	if !verifyd.IsDigits(code) || len(code) != length {
		return "", verifyd.Invalid(verifyd.Failure{Property: "code", Code: verifyd.FailCodeInvalid,
			Details: "code must be the digits of the code that was sent."})
	}
	return code, nil
}

// record is the answer of GET /webapi/verify/{id}.
type record struct {
	RequestID         string               `json:"requestId"`
	PhoneNumber       string               `json:"phoneNumber"`
	State             verifyd.State        `json:"state"`
	NumberStatus      verifyd.NumberStatus `json:"numberStatus"`
	Created           timestamp            `json:"created"`
	ValidUntil        timestamp            `json:"validUntil"`
	Verified          *timestamp           `json:"verified,omitempty"`
	AttemptsRemaining int                  `json:"attemptsRemaining"`
	// Delivery is null, never left out, when nothing was sent: API.md
	// lists every key of the record and marks only verified as optional.
	Delivery *delivery `json:"delivery"`
}

// delivery is the progress of a record's message. MessageID and Error are
// null until there is one, for the same reason as record.Delivery.
type delivery struct {
	State     verifyd.DeliveryState `json:"state"`
	MessageID *string               `json:"messageId"`
	Error     *string               `json:"error"`
	Updated   timestamp             `json:"updated"`
}

// nullable is s, or nil when s is empty, for a key written as null.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// errNoVerification is the 404 of GET for an unknown id and for another
// account's, which must be indistinguishable.
func errNoVerification() error {
	return verifyd.Errorf(verifyd.ENOTFOUND, "There is no verification with that requestId.")
}

// handleGet is GET /webapi/verify/{id}: the full record, finished or not.
func (s *Server) handleGet(w http.ResponseWriter, r *http.Request, a *verifyd.Account) error {
	id := r.PathValue("id")
	addLog(r.Context(), slog.String("requestId", id))
	if !isRequestID(id) {
		return errNoVerification()
	}
	v, err := s.cfg.Store.FindVerification(r.Context(), a.ID, id)
	if verifyd.ErrorCode(err) == verifyd.ENOTFOUND {
		return errNoVerification()
	}
	if err != nil {
		return err
	}
	// Past its validity a pending request is over, whether or not a
	// validate has written that yet.
	v.Expire(s.now().UTC())
	rec := record{
		RequestID:         v.ID,
		PhoneNumber:       v.PhoneNumber,
		State:             v.State,
		NumberStatus:      v.NumberStatus,
		Created:           timestamp(v.Created),
		ValidUntil:        timestamp(v.ValidUntil),
		AttemptsRemaining: v.AttemptsRemaining(),
	}
	if v.State == verifyd.StateVerified {
		t := timestamp(v.Verified)
		rec.Verified = &t
	}
	if d := v.Delivery; d != nil {
		rec.Delivery = &delivery{State: d.State, MessageID: nullable(d.CarrierID), Error: nullable(d.Error), Updated: timestamp(d.Updated)}
	}
	writeJSON(w, http.StatusOK, rec)
	return nil
}

// handleCancel is DELETE /webapi/verify/{id}: 204 whatever the id was, so
// that it tells nothing about which ids exist.
func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request, a *verifyd.Account) error {
	id := r.PathValue("id")
	addLog(r.Context(), slog.String("requestId", id))
	if isRequestID(id) {
		v, err := s.cfg.Store.UpdateVerification(r.Context(), a.ID, id, func(v *verifyd.Verification) error {
			if !v.Cancel(s.now().UTC()) {
				return errFinished
			}
			return nil
		})
		switch {
		case err == nil:
			s.observer().Cancelled(v)
		case !errors.Is(err, errFinished) && verifyd.ErrorCode(err) != verifyd.ENOTFOUND:
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// draw runs fn with the random source, one request at a time.
func (s *Server) draw(fn func(r io.Reader) error) error {
	s.randMu.Lock()
	defer s.randMu.Unlock()
	return fn(s.cfg.Rand)
}
