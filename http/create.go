package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"verifyd"
	"verifyd/gsm"
	"verifyd/otp"
	"verifyd/phone"
)

// createBody is the create request as sent. Every field is raw so that a
// field of the wrong type fails that field alone.
type createBody struct {
	To             json.RawMessage `json:"to"`
	From           json.RawMessage `json:"from"`
	CountryIsoCode json.RawMessage `json:"countryIsoCode"`
	Body           json.RawMessage `json:"body"`
	ValidUntil     json.RawMessage `json:"validUntil"`
}

// createInput is a create request that passed every field rule.
type createInput struct {
	number     verifyd.Number
	from       string
	template   string
	validUntil time.Time
}

// judgeCreate decodes and checks a create body for account a at now, by the
// rules of API.md section 3 in their order, sizing the text as charset cs
// sends it. Each failing field is reported
// once, with its first failing rule; every failing field is reported. It
// judges nothing that needs the network or the store (number lookup,
// limits).
func judgeCreate(body []byte, a *verifyd.Account, defaultFrom string, cs gsm.Charset, now time.Time) (createInput, *verifyd.Error) {
	var req createBody
	if err := decodeObject(body, &req); err != nil {
		return createInput{}, err
	}
	var in createInput
	var toF, countryF, fromF, bodyF, untilF *verifyd.Failure
	fail := func(property, code, details string) *verifyd.Failure {
		return &verifyd.Failure{Property: property, Code: code, Details: details}
	}

	// countryIsoCode first, because whether "to" is judged depends on it.
	country, _, ok := optionalString(req.CountryIsoCode)
	country = strings.TrimSpace(country)
	switch {
	case !ok:
		countryF = fail("countryIsoCode", verifyd.FailInvalidJSON, "countryIsoCode must be a string.")
	case country != "":
		if _, known := phone.Alpha3(country); !known {
			countryF = fail("countryIsoCode", verifyd.FailCountryIsoCodeInvalid,
				"countryIsoCode must be an ISO 3166-1 alpha-3 country code, such as GBR.")
		}
	}

	to, _, ok := optionalString(req.To)
	switch {
	case !ok:
		toF = fail("to", verifyd.FailInvalidJSON, "to must be a string.")
	case strings.TrimSpace(to) == "":
		toF = fail("to", verifyd.FailToEmpty, "to is required: the phone number to send the code to.")
	case countryF != nil:
		// The number cannot be judged without knowing its country.
	default:
		n, err := phone.Parse(to, country)
		if err != nil {
			toF = fail("to", verifyd.FailToInvalid, "to is not a valid phone number; write it in international form, such as 447123123456, or give countryIsoCode.")
			break
		}
		in.number = n
		if !phone.Allowed(a.Settings.Countries, n.Region) {
			toF = fail("to", verifyd.FailCountryNotAllowed, "This account may not send codes to numbers in that country.")
		}
	}

	from, _, ok := optionalString(req.From)
	// A blank sender is no sender (the default is assigned), and spaces
	// around one would reach the handset as part of it.
	from = strings.TrimSpace(from)
	switch {
	case !ok:
		fromF = fail("from", verifyd.FailInvalidJSON, "from must be a string.")
	case from == "":
		from = a.Settings.DefaultFrom
		if from == "" {
			from = defaultFrom
		}
		switch {
		case from == "":
			fromF = fail("from", verifyd.FailFromEmpty, "from is required: this account has no default sender.")
		case a.Settings.Reserved(from):
			// The server's default is judged against no account when the
			// server starts: an account must not send under a sender id it
			// may not use by leaving from out.
			fromF = fail("from", verifyd.FailFromReserved, "The default sender is reserved for this account; choose another from.")
		}
	default:
		if code, details := verifyd.JudgeSender(from); code != "" {
			fromF = fail("from", code, details)
		} else if a.Settings.Reserved(from) {
			fromF = fail("from", verifyd.FailFromReserved, "That sender is reserved; choose another from.")
		}
	}
	in.from = from

	// validUntil before body, because the body's {{validMinutes}} and so its
	// length depend on it; the failures are still listed in field order.
	in.validUntil = now.Add(min(a.Settings.Validity(), verifyd.MaxValidity))
	until, present, ok := optionalString(req.ValidUntil)
	switch {
	case !ok:
		untilF = fail("validUntil", verifyd.FailInvalidJSON, "validUntil must be a timestamp such as 2015-10-21T13:28:06.419Z.")
	case present:
		t, ok := parseTime(until)
		switch {
		case !ok:
			untilF = fail("validUntil", verifyd.FailInvalidJSON, "validUntil must be a timestamp such as 2015-10-21T13:28:06.419Z.")
		case t.Before(now):
			untilF = fail("validUntil", verifyd.FailValidUntilMinExceeded, "validUntil is in the past.")
		case t.After(now.Add(verifyd.MaxValidity)):
			untilF = fail("validUntil", verifyd.FailValidUntilMaxExceeded, "validUntil is more than 30 minutes ahead.")
		default:
			in.validUntil = t
		}
	}

	tmpl, _, ok := optionalString(req.Body)
	switch {
	case !ok:
		bodyF = fail("body", verifyd.FailInvalidJSON, "body must be a string.")
	case tmpl == "":
		tmpl = otp.DefaultTemplate
		fallthrough
	default:
		if err := otp.CheckTemplate(tmpl); errors.Is(err, otp.ErrNoCode) {
			bodyF = fail("body", verifyd.FailBodyInvalid, "body must contain the {{code}} placeholder, where the code goes.")
			break
		} else if err != nil {
			bodyF = fail("body", verifyd.FailBodyInvalid, "body may only hold the placeholders {{code}} and {{validMinutes}}.")
			break
		}
		// Digits are one character each in every charset, so any code of
		// the right length gives the real text's size.
		sample := otp.Render(tmpl, strings.Repeat("0", a.Settings.CodeLen()), validMinutes(now, in.validUntil))
		if n, max := cs.Segments(sample), a.Settings.Segments(); n > max {
			bodyF = fail("body", verifyd.FailBodyInvalid, fmt.Sprintf("body takes %d SMS segments once rendered; this account allows %d.", n, max))
		}
	}
	in.template = tmpl

	var failures []verifyd.Failure
	for _, f := range []*verifyd.Failure{toF, countryF, fromF, bodyF, untilF} {
		if f != nil {
			failures = append(failures, *f)
		}
	}
	if len(failures) > 0 {
		return createInput{}, verifyd.Invalid(failures...)
	}
	return in, nil
}

// validMinutes is the {{validMinutes}} of a code: the whole minutes left,
// rounded up.
func validMinutes(now, until time.Time) int {
	left := until.Sub(now)
	if left <= 0 {
		return 0
	}
	return int((left + time.Minute - 1) / time.Minute)
}

// numberStatus is what the lookup says of n, or, when n is one of the
// account's test numbers, its configured status and the test number itself
// (nil otherwise), which the rest of the create then follows.
func (s *Server) numberStatus(ctx context.Context, a *verifyd.Account, n verifyd.Number) (verifyd.NumberStatus, *verifyd.TestNumber, error) {
	tn, ok := a.Settings.TestNumber(n.Digits)
	if !ok {
		status, err := s.cfg.Lookup.LookupNumber(ctx, n)
		return status, nil, err
	}
	if tn.Code != "" && len(tn.Code) != a.Settings.CodeLen() {
		// Settings.Set keeps the two in step; a code that no validate can
		// match must not be sent as if it worked.
		return "", nil, fmt.Errorf("test number code of %d digits, account code length %d", len(tn.Code), a.Settings.CodeLen())
	}
	addLog(ctx, slog.Bool("testNumber", true))
	return tn.Status, &tn, nil
}

// holdTestMessage makes a test number's message due only once its deadline
// has passed, so that no claim ever hands it to the sender: the queue would
// expire it instead. finishTestMessage then records its configured outcome
// right after the commit; if that never happens the message still goes
// nowhere.
func holdTestMessage(m *verifyd.Message) {
	if m != nil {
		m.NextAttempt = m.Deadline
	}
}

// testCarrierPrefix starts the carrier id of a test number's message, so
// that a record shows the message never met a carrier.
const testCarrierPrefix = "test-"

// finishTestMessage puts a test number's held message in its configured
// final state through the same store calls a delivery worker and a
// carrier's receipt use, so the record reads as a real one would.
func (s *Server) finishTestMessage(ctx context.Context, m *verifyd.Message, outcome verifyd.DeliveryState, now time.Time) error {
	if m == nil {
		return nil
	}
	// The verification is committed: record the outcome even if the client
	// has gone.
	ctx = context.WithoutCancel(ctx)
	res := verifyd.MessageResult{RequestID: m.RequestID, State: outcome, At: now}
	switch outcome {
	case verifyd.DeliveryFailed, verifyd.DeliveryExpired:
		res.Error = "test number"
		return s.cfg.Store.FinishMessages(ctx, []verifyd.MessageResult{res})
	}
	carrierID := testCarrierPrefix + m.RequestID
	res.CarrierIDs = []string{carrierID}
	if outcome == verifyd.DeliverySubmitted || outcome == verifyd.DeliveryDelivered {
		// Submitted waits for a receipt that never comes, as configured;
		// Delivered is recorded as a final sender's hand-over is.
		return s.cfg.Store.FinishMessages(ctx, []verifyd.MessageResult{res})
	}
	res.State = verifyd.DeliverySubmitted
	if err := s.cfg.Store.FinishMessages(ctx, []verifyd.MessageResult{res}); err != nil {
		return err
	}
	return s.cfg.Store.RecordReceipt(ctx, verifyd.Receipt{CarrierID: carrierID, State: outcome, Error: "test number", At: now})
}
