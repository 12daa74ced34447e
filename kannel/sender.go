// Package kannel sends texts through the HTTP sendsms interface of a Kannel
// smsbox, which many aggregators copy, and reads the delivery reports
// Kannel sends back to verifyd's API over HTTP.
//
// sendsms answers no message id, so each Send makes its own reference (the
// message's carrier id) and, when reports are asked for, a DLR URL that
// carries it back with a token only this server's key can make.
package kannel

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"verifyd"
	"verifyd/gsm"
)

// Signer makes the token a delivery report URL carries:
// otp.Keyring.ReceiptToken.
type Signer interface {
	ReceiptToken(ref string) []byte
}

// Options are a Sender's dependencies. Zero values take the defaults noted.
type Options struct {
	// Signer signs the references of report URLs; required when the
	// Config asks for receipts.
	Signer Signer
	// Client makes the requests (default: a client of its own, certificates
	// verified against the system roots). Redirects are never followed, so
	// the password in the query goes to the configured gateway only.
	Client *http.Client
	Now    func() time.Time // default time.Now
	Rand   io.Reader        // references are read from it (default crypto/rand)
}

// Sender hands texts to a Kannel smsbox, one sendsms GET per text.
type Sender struct {
	cfg    Config
	signer Signer
	client *http.Client
	now    func() time.Time
	rand   io.Reader

	mu       sync.Mutex
	lastDown time.Time // the last send that could not reach the gateway
	lastUp   time.Time // the last send the gateway answered
}

var _ verifyd.Sender = (*Sender)(nil)

// refPrefix marks the references this sender makes, in the store and in
// the report URL.
const refPrefix = "kannel-"

// readyWindow is how long a failure to reach the gateway keeps /readyz
// failing when nothing has reached it since: long enough to show an outage
// between two retries, short enough that a quiet server does not stay
// unready after the gateway came back.
const readyWindow = time.Minute

// New returns a Sender for cfg.
func New(cfg Config, opt Options) (*Sender, error) {
	if cfg.Receipts != "" && opt.Signer == nil {
		return nil, errors.New("kannel: receipts asked for without a signer")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if opt.Client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		opt.Client = &http.Client{Transport: tr}
	}
	client := *opt.Client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Rand == nil {
		opt.Rand = rand.Reader
	}
	return &Sender{cfg: cfg, signer: opt.Signer, client: &client, now: opt.Now, rand: opt.Rand}, nil
}

// Send makes one sendsms request for m and returns the reference it made as
// the message's one carrier id.
func (s *Sender) Send(ctx context.Context, m *verifyd.SMS) ([]string, error) {
	validity := 0
	if !m.ValidUntil.IsZero() {
		if validity = validityMinutes(m.ValidUntil.Sub(s.now())); validity < 1 {
			// Kannel counts whole minutes: any validity it can be given
			// would let the SMSC deliver the text after the code expired.
			return nil, &verifyd.SendError{Kind: verifyd.SendTemporary, Reason: "less than a minute of validity left"}
		}
	}
	ref, err := s.newRef()
	if err != nil {
		return nil, &verifyd.SendError{Kind: verifyd.SendTemporary, Reason: "no randomness for a reference", Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.requestURL(m, ref, validity), nil)
	if err != nil {
		// Not reached: the endpoint parsed at start.
		return nil, &verifyd.SendError{Kind: verifyd.SendPermanent, Reason: "sendsms URL is not valid"}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			// url.Error quotes the request's URL: the password is in it.
			err = ue.Err
		}
		if reached := !isConnectError(err); reached {
			s.markUp()
		} else {
			s.markDown()
		}
		reason := "gateway unreachable"
		if ctx.Err() != nil {
			reason = "gateway did not answer in time"
		}
		return nil, &verifyd.SendError{Kind: verifyd.SendTemporary, Reason: reason, Err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	err = answerError(resp.StatusCode, body, s.cfg.Password, m.Text)
	// A gateway that refuses the credentials takes no text until the
	// operator fixes them: as unusable as one that cannot be reached.
	if credentialsRefused(resp.StatusCode, body) {
		s.markDown()
	} else {
		s.markUp()
	}
	if err != nil {
		return nil, err
	}
	return []string{ref}, nil
}

// requestURL is the sendsms GET for m: Kannel's own parameters, then the
// operator's, with the DLR URL when reports are asked for. validity is in
// minutes, 0 for none.
func (s *Sender) requestURL(m *verifyd.SMS, ref string, validity int) string {
	q := url.Values{}
	for k, v := range s.cfg.Params {
		q[k] = v
	}
	q.Set("username", s.cfg.Username)
	q.Set("password", s.cfg.Password)
	q.Set("from", senderID(m.From))
	// Kannel's SMPP and other drivers take a number without a leading +
	// as national (TON 2), so the SMSC would read 44... as a number of its
	// own country; with the + they send it as international. m.To is the
	// international form's digits.
	q.Set("to", "+"+m.To)
	q.Set("text", m.Text)
	q.Set("charset", "UTF-8")
	// Kannel's coding 0 is its 7-bit default alphabet, which its SMSC
	// drivers write as GSM 03.38; 2 is UCS-2.
	if c, _ := gsm.Analyze(m.Text); c == gsm.GSM7 {
		q.Set("coding", "0")
	} else {
		q.Set("coding", "2")
	}
	if validity > 0 {
		q.Set("validity", strconv.Itoa(validity))
	}
	if s.cfg.Receipts != "" {
		q.Set("dlr-mask", strconv.Itoa(dlrMask))
		q.Set("dlr-url", s.reportURL(ref))
	}
	return s.cfg.Endpoint + "?" + q.Encode()
}

// senderID is m.From as sendsms takes it. Kannel sends a numeric sender
// without a leading + as a national number (TON 2), so a phone number gets
// its + and goes as international, as the SMPP sender sends it; a short
// code (6 digits at most, as the SMPP sender counts) and a name go as they
// are.
func senderID(from string) string {
	if len(from) > 6 && verifyd.IsDigits(from) {
		return "+" + from
	}
	return from
}

// validityMinutes is sendsms's validity for a text that must not be
// delivered after left: whole minutes (Kannel counts no seconds), rounded
// down so that the SMSC gives up no later than the code expires.
func validityMinutes(left time.Duration) int {
	return int(left / time.Minute)
}

// dlrMask asks for the final reports: delivered to the phone (1), not
// delivered to the phone (2), refused by the SMSC (16).
const dlrMask = DLRDelivered | DLRUndelivered | DLRSMSCRejected

// reportURL is the DLR URL of the message with reference ref. Kannel puts
// the report's type in place of %d, and reads every other % as one of its
// escapes too (%A is the SMSC's receipt text, which quotes the code; %C the
// charset), so each % of the base's own escapes is doubled: Kannel turns
// %% back into %.
func (s *Sender) reportURL(ref string) string {
	return strings.ReplaceAll(s.cfg.Receipts, "%", "%%") + ReceiptPath + "?ref=" + ref + "&token=" +
		hex.EncodeToString(s.signer.ReceiptToken(ref)) + "&type=%d"
}

// newRef returns a fresh reference: 128 random bits in hex, after a prefix
// that says where it came from.
func (s *Sender) newRef() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", err
	}
	return refPrefix + hex.EncodeToString(b[:]), nil
}

// answerError classifies a sendsms answer: nil when the gateway took the
// text. The reasons are stored with the message, so they hold no body text
// unless it is short, printable and carries neither the password nor the
// text (a gateway that echoes its request would store the code).
func answerError(status int, body []byte, password, text string) error {
	if status >= 200 && status < 300 {
		return nil // Kannel: 202 "0: Accepted for delivery" or "3: Queued for later delivery"
	}
	detail := safeDetail(body, password, text)
	switch {
	case status == http.StatusForbidden && bytes.HasPrefix(body, notRoutable):
		// Kannel's 403 for a message no SMSC of its may take (bearerbox
		// found no route: denied-prefix, allowed-smsc-id, ...), not for
		// the credentials: the same text again gets the same answer.
		return &verifyd.SendError{Kind: verifyd.SendPermanent,
			Reason: fmt.Sprintf("gateway refused the message (HTTP %d)%s", status, detail)}
	case credentialsRefused(status, body):
		// A wrong username or password is the operator's to fix; the
		// message itself is fine and goes once the gateway takes it.
		return &verifyd.SendError{Kind: verifyd.SendTemporary,
			Reason: fmt.Sprintf("gateway refused the credentials (HTTP %d)", status)}
	case status == http.StatusServiceUnavailable:
		// Kannel's queue is full, or it is shutting down.
		return &verifyd.SendError{Kind: verifyd.SendThrottled, Reason: "gateway busy (HTTP 503)" + detail}
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		// Kannel refuses this message's parameters (a destination its
		// lists deny, a sender it does not allow): the same text again
		// gets the same answer.
		return &verifyd.SendError{Kind: verifyd.SendPermanent,
			Reason: fmt.Sprintf("gateway refused the message (HTTP %d)%s", status, detail)}
	default:
		return &verifyd.SendError{Kind: verifyd.SendTemporary,
			Reason: fmt.Sprintf("gateway answered HTTP %d%s", status, detail)}
	}
}

// credentialsRefused reports whether the gateway's answer refuses the
// username or password, not the message.
func credentialsRefused(status int, body []byte) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden && !bytes.HasPrefix(body, notRoutable)
}

// notRoutable starts the body of Kannel's 403 for a message bearerbox
// cannot route; its 403 for wrong credentials says "Authorization failed".
var notRoutable = []byte("Not routable.")

// safeDetail is ": " and the first line of body when it is fit to store,
// else "".
func safeDetail(body []byte, password, text string) string {
	line, _, _ := strings.Cut(string(body), "\n")
	line = strings.TrimSpace(line)
	if line == "" || len(line) > 80 {
		return ""
	}
	for _, r := range line {
		if r < ' ' || r > '~' {
			return ""
		}
	}
	if strings.Contains(line, password) || text != "" && strings.Contains(line, text) || hasDigits(line, 4) {
		return ""
	}
	return ": " + line
}

// hasDigits reports whether s has a run of n digits or more: a code, or a
// phone number, neither of which belongs in a stored reason.
func hasDigits(s string, n int) bool {
	run := 0
	for _, r := range s {
		if r >= '0' && r <= '9' {
			if run++; run >= n {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// isConnectError reports whether err came before the gateway got the
// request: no connection was made.
func isConnectError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && (op.Op == "dial" || op.Op == "remote error") {
		return true // refused, unreachable, or a TLS handshake the gateway refused
	}
	// A certificate the sender does not trust leaves no connection to
	// send on, as surely as a closed port.
	var cert *tls.CertificateVerificationError
	var record tls.RecordHeaderError
	var dns *net.DNSError
	return errors.As(err, &cert) || errors.As(err, &record) || errors.As(err, &dns)
}

func (s *Sender) markDown() {
	s.mu.Lock()
	s.lastDown = s.now()
	s.mu.Unlock()
}

func (s *Sender) markUp() {
	s.mu.Lock()
	s.lastUp = s.now()
	s.mu.Unlock()
}

// Ready reports the gateway unusable while the last send could not use it
// (no connection, an untrusted certificate, refused credentials), for a
// minute after that send.
func (s *Sender) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastDown.After(s.lastUp) && s.now().Sub(s.lastDown) < readyWindow {
		return errors.New("kannel: the last send could not use the gateway (unreachable, untrusted certificate or refused credentials)")
	}
	return nil
}

// Close lets go of idle connections; a send under way ends by its context.
func (s *Sender) Close(context.Context) error {
	s.client.CloseIdleConnections()
	return nil
}

// ReceiptPath is the route its delivery report URLs point to.
func (s *Sender) ReceiptPath() string { return ReceiptPath }
