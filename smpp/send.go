package smpp

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"verifyd"
)

// Values written into every submit_sm.
const (
	esmUDHI            = 0x40 // short_message starts with a UDH
	registeredDelivery = 0x01 // a receipt on final success or failure
)

// Send hands m to the SMSC, one submit_sm per part, and returns the SMSC's
// message id of each part, normalised as NormalizeID does. The text is
// encoded and split for Config.Charset: data_coding 0 in that charset when
// it can hold the text, UCS-2 (data_coding 8) otherwise. A failure is a
// *verifyd.SendError:
//
//   - ESME_RTHROTTLED and ESME_RMSGQFUL pause the bind and resend the same
//     part first in line, for as long as ctx and m.ValidUntil allow; past
//     them Send returns SendThrottled.
//   - ESME_RSYSERR, ESME_RX_T_APPN, ESME_RUNKNOWNERR, no response in time,
//     a dropped connection, no bind up: SendTemporary. ESME_RINVBNDSTS and
//     ESME_RALYBND also drop the session, which is then bound again.
//     Without a response the outcome is unknown: the part may have been
//     accepted, so a retry may duplicate it.
//   - Any other status: SendPermanent, the status name as Reason.
//
// When a later part of a long text fails, the ids of the earlier ones are
// dropped with it: the retry sends every part again, under the same
// concatenation reference, so the handset can still assemble the text.
func (c *Client) Send(ctx context.Context, m *verifyd.SMS) ([]string, error) {
	src, err := c.sourceAddr(m.From)
	if err != nil {
		return nil, err
	}
	dst, err := destAddr(m.To)
	if err != nil {
		return nil, err
	}
	coding, parts := c.cfg.Charset.Split(m.Text)
	base := PDU{
		ID:                 SubmitSM,
		Source:             src,
		Dest:               dst,
		RegisteredDelivery: registeredDelivery,
		DataCoding:         byte(coding),
	}
	var ref byte
	if len(parts) > 1 {
		if len(parts) > 255 {
			return nil, &verifyd.SendError{Kind: verifyd.SendPermanent, Reason: "text too long",
				Err: fmt.Errorf("smpp: %d parts, at most 255", len(parts))}
		}
		ref = c.concatRef(m.RequestID)
		base.ESMClass = esmUDHI
	}
	// The deadline is kept on the monotonic clock: ValidUntil is read
	// against the injected clock once, here.
	deadline := time.Time{}
	if !m.ValidUntil.IsZero() {
		deadline = time.Now().Add(m.ValidUntil.Sub(c.cfg.Now()))
	}
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	ids := make([]string, 0, len(parts))
	var sm [MaxShortMessage]byte
	for i, part := range parts {
		p := base
		if len(parts) > 1 {
			udh := [6]byte{0x05, 0x00, 0x03, ref, byte(len(parts)), byte(i + 1)}
			p.ShortMessage = append(append(sm[:0], udh[:]...), part...)
		} else {
			p.ShortMessage = part
		}
		id, err := c.submitPart(ctx, m, &p, deadline)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// concatRef is the 8-bit concatenation reference of a long text. It is
// derived from the request id, so a retry of the same request reuses it and
// a handset holding parts from an earlier attempt can still complete the
// text (the text is the same on every attempt).
func (c *Client) concatRef(requestID string) byte {
	if requestID == "" {
		return byte(c.refCount.Add(1))
	}
	h := fnv.New32a()
	h.Write([]byte(requestID))
	return byte(h.Sum32())
}

// submitPart sends one part until it is accepted or fails for good. deadline
// (zero for none) bounds throttling and queue-full waits.
func (c *Client) submitPart(ctx context.Context, m *verifyd.SMS, p *PDU, deadline time.Time) (string, error) {
	if c.closed() {
		return "", temporary("ESME_CLOSED", errors.New("smpp: client closed"))
	}
	var (
		s        *session
		ticket   bool // holding a throttled part's place at the head of the line
		pausedBy = StatusThrottled
		monoDead int64
	)
	defer func() {
		if ticket {
			s.unticket()
		}
	}()
	for {
		if s == nil {
			var err error
			if s, err = c.pick(ctx); err != nil {
				return "", temporary("ESME_NOTBOUND", err)
			}
		}
		// Fail fast on a part already past its validity (pick may have
		// waited for a bind), before the throttle, rate and window waits;
		// the period itself is taken once those are over.
		if _, err := c.validity(m.ValidUntil); err != nil {
			return "", err
		}
		if !deadline.IsZero() {
			monoDead = int64(deadline.Sub(s.epoch))
		}
		if err := s.gate(ctx, ticket, monoDead); err != nil {
			if errors.Is(err, errGiveUp) {
				return "", &verifyd.SendError{Kind: verifyd.SendThrottled, Reason: pausedBy.String(), Err: err}
			}
			return "", temporary("ESME_NOTSENT", err)
		}
		if err := s.acquire(ctx); err != nil {
			return "", temporary("ESME_NOTSENT", err)
		}
		// The token is taken with the slot in hand: taken before, parts
		// would hold tokens while the window is full and then go out
		// together, faster than the rate, the moment it opens.
		if c.limiter != nil {
			if err := c.limiter.Wait(ctx); err != nil {
				s.release()
				return "", temporary("RATE_LIMIT", err)
			}
		}
		if s.paused() || (!ticket && s.resendQ.Load() > 0) {
			// Throttled while this part waited for the slot or the
			// rate: the pause holds for it too, and a throttled part
			// goes first.
			s.release()
			continue
		}
		// Taken after the throttle pause, the rate limit and the window, so
		// that a relative period does not outlast ValidUntil by the time
		// spent waiting, and an absolute one already past is not sent.
		vp, err := c.validity(m.ValidUntil)
		if err != nil {
			s.release()
			return "", err
		}
		p.ValidityPeriod = vp
		s.out.Add(1)
		r, err := s.request(ctx, p, false, func() {
			if ticket {
				ticket = false
				s.unticket()
			}
		})
		s.out.Add(-1)
		if err == nil && classify(r.status) == classThrottle {
			// Paused before the slot is given back, so that no part
			// waiting for it goes out in the pause.
			s.throttled(r.status)
			ticket = true
			pausedBy = r.status
		}
		s.release()
		if err != nil {
			if errors.Is(err, errClosing) && !c.closed() {
				// The session was lost before this part went out: try
				// another bind, giving up this one's place in line.
				if ticket {
					ticket = false
					s.unticket()
				}
				s = nil
				continue
			}
			return "", temporary(reasonOf(err), err)
		}
		switch classify(r.status) {
		case classOK:
			s.accepted()
			c.stats.submitted.Add(1)
			return NormalizeID(r.messageID), nil
		case classThrottle:
			continue
		case classRebind:
			s.fail(fmt.Errorf("smpp: SMSC says %s, rebinding", r.status))
			return "", temporary(r.status.String(), nil)
		case classTemporary:
			return "", temporary(r.status.String(), nil)
		default:
			return "", &verifyd.SendError{Kind: verifyd.SendPermanent, Reason: r.status.String()}
		}
	}
}

func temporary(reason string, err error) *verifyd.SendError {
	return &verifyd.SendError{Kind: verifyd.SendTemporary, Reason: reason, Err: err}
}

// reasonOf names a session error for SendError.Reason.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, errTimeout):
		return "ESME_TIMEOUT"
	case errors.Is(err, errConnLost):
		return "ESME_CONNLOST"
	case errors.Is(err, errMalformedR):
		return "ESME_BADRESP"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "ESME_CANCELLED"
	}
	return "ESME_ERROR"
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// pick chooses a session to submit on: round robin over the bound ones,
// passing over a paused one when another is free. With none bound it waits
// up to Config.Timeout for one.
func (c *Client) pick(ctx context.Context) (*session, error) {
	var timer *time.Timer
	for {
		tx := *c.tx.Load()
		if n := len(tx); n > 0 {
			// Reduced while still unsigned: where int is 32 bits, the
			// counter past 2^31 would be a negative index.
			start := int(c.rr.Add(1) % uint32(n))
			var fallback *session
			for i := range n {
				s := tx[(start+i)%n]
				if !s.alive() {
					continue // lost, not yet removed: do not spin on it
				}
				if !s.paused() {
					return s, nil
				}
				if fallback == nil {
					fallback = s
				}
			}
			if fallback != nil {
				return fallback, nil
			}
		}
		c.mu.Lock()
		closing, ch := c.closing, c.changed
		c.mu.Unlock()
		if closing {
			return nil, errors.New("smpp: client closed")
		}
		if timer == nil {
			timer = time.NewTimer(c.cfg.Timeout)
			defer timer.Stop()
		}
		select {
		case <-ch:
		case <-timer.C:
			return nil, errors.New("smpp: no bind up")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// sourceAddr picks the sender's TON/NPI: digits are an international number
// (1/1), or a short code (0/1) up to 6 digits; anything else is alphanumeric
// (5/0). Config.SourceTON/SourceNPI override the choice.
func (c *Client) sourceAddr(from string) (Address, error) {
	if len(from) > 0 && from[0] == '+' {
		from = from[1:]
	}
	a := Address{Addr: from}
	switch {
	case from == "":
	case verifyd.IsDigits(from) && len(from) <= 6:
		a.TON, a.NPI = 0, 1
	case verifyd.IsDigits(from):
		a.TON, a.NPI = 1, 1
	default:
		a.TON, a.NPI = 5, 0
	}
	if c.cfg.SourceTON != nil {
		a.TON = *c.cfg.SourceTON
	}
	if c.cfg.SourceNPI != nil {
		a.NPI = *c.cfg.SourceNPI
	}
	if len(from) >= maxAddr || !isPrintableASCII(from) {
		return Address{}, &verifyd.SendError{Kind: verifyd.SendPermanent, Reason: "ESME_RINVSRCADR",
			Err: errors.New("smpp: sender id must be at most 20 printable ASCII characters")}
	}
	return a, nil
}

// destAddr is the handset's number: international digits, TON 1 / NPI 1.
func destAddr(to string) (Address, error) {
	if len(to) > 0 && to[0] == '+' {
		to = to[1:]
	}
	if to == "" || len(to) >= maxAddr || !verifyd.IsDigits(to) {
		return Address{}, &verifyd.SendError{Kind: verifyd.SendPermanent, Reason: "ESME_RINVDSTADR",
			Err: errors.New("smpp: destination must be 1 to 20 digits")}
	}
	return Address{TON: 1, NPI: 1, Addr: to}, nil
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return false
		}
	}
	return true
}

// validity renders validUntil as a validity_period that is never later than
// it: rounded down to the second, absolute in UTC unless Config.Validity says
// relative. A zero validUntil leaves the SMSC's default. A validUntil already
// past fails temporarily, so the delivery worker sees its deadline and
// records the delivery as expired.
func (c *Client) validity(validUntil time.Time) (string, error) {
	if validUntil.IsZero() {
		return "", nil
	}
	now := c.cfg.Now()
	left := validUntil.Sub(now).Truncate(time.Second)
	if left < time.Second {
		return "", temporary("VALIDITY_EXPIRED", errors.New("smpp: the message is past its validity"))
	}
	if c.cfg.Validity == ValidityRelative {
		return RelativeTime(left), nil
	}
	return AbsoluteTime(validUntil), nil
}

// AbsoluteTime formats t as an SMPP absolute time in UTC
// ("YYMMDDhhmmss000+"), rounded down to the second.
func AbsoluteTime(t time.Time) string {
	return t.UTC().Format("060102150405") + "000+"
}

// RelativeTime formats d as an SMPP relative time ("YYMMDDhhmmss000R"),
// rounded down to the second; durations past 99 days are capped there.
func RelativeTime(d time.Duration) string {
	secs := int64(d / time.Second)
	if secs < 0 {
		secs = 0
	}
	days := secs / 86400
	if days > 99 {
		days, secs = 99, 99*86400+86399
	}
	secs -= days * 86400
	return fmt.Sprintf("0000%02d%02d%02d%02d000R", days, secs/3600, secs/60%60, secs%60)
}
