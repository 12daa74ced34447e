package http

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"strconv"

	"verifyd"
	"verifyd/phone"
)

// inboxLimit is how many messages the inbox shows: enough for a developer's
// session, few enough to stay one quick query.
const inboxLimit = 100

//go:embed inbox.html
var inboxPage []byte

// inboxMessage is one message of GET /inbox/messages.
type inboxMessage struct {
	ID        string    `json:"id"`
	RequestID string    `json:"requestId"`
	To        string    `json:"to"`
	From      string    `json:"from"`
	Body      string    `json:"body"`
	Created   timestamp `json:"created"`
	// Code is the digits of Body that are the verification's code, absent
	// when they cannot be known (see messageCode).
	Code string `json:"code,omitempty"`
}

// unreadable is the body shown for a message sealed under another server
// key (a dev database kept across a key change): the page still lists it,
// and says why its text is missing.
const unreadable = "[sealed under another server key]"

// handleInboxPage is GET /inbox: a page that lists the dev inbox and keeps
// itself current from /inbox/events. It carries no data; the page's script
// builds the list with textContent, so a message body can never become
// markup, and the CSP lets only the page's own script and style run.
func (s *Server) handleInboxPage(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", inboxCSP(inboxPage))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(inboxPage)))
	w.WriteHeader(http.StatusOK)
	w.Write(inboxPage)
	return nil
}

// inboxCSP is the page's Content-Security-Policy: nothing from elsewhere,
// and of inline code only the page's own <script> and <style>, allowed by
// their SHA-256 rather than by 'unsafe-inline', so that even a body that
// became markup could not run. Computed per request: dev only, and a few
// kilobytes to hash.
func inboxCSP(page []byte) string {
	return "default-src 'none'; script-src " + inlineHash(page, "script") +
		"; style-src " + inlineHash(page, "style") +
		"; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// inlineHash is the CSP source of the first <tag> element's content in
// page, or 'none' when there is none.
func inlineHash(page []byte, tag string) string {
	_, rest, ok := bytes.Cut(page, []byte("<"+tag+">"))
	if !ok {
		return "'none'"
	}
	content, _, ok := bytes.Cut(rest, []byte("</"+tag+">"))
	if !ok {
		return "'none'"
	}
	sum := sha256.Sum256(content)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// handleInboxMessages is GET /inbox/messages?to=DIGITS: the messages the
// dev sender "sent", newest first, their texts opened. The page reads it
// when its browser cannot keep an event stream.
func (s *Server) handleInboxMessages(w http.ResponseWriter, r *http.Request) error {
	query := r.URL.Query().Get("to")
	to := phone.Normalize(query)
	out := []inboxMessage{}
	// Every answer, the empty one too: a cached list would hide new messages.
	w.Header().Set("Cache-Control", "no-store")
	// Bodies are texts the server did not choose, markup included, served
	// without credentials: a browser must read them as JSON and nothing else.
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if query != "" && to == "" {
		// Not a number: it matches nothing, rather than everything.
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	ms, err := s.cfg.Store.ListInboxMessages(r.Context(), to, inboxLimit)
	if err != nil {
		return err
	}
	for _, m := range ms {
		out = append(out, s.openInboxMessage(m))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// openInboxMessage is m as the inbox shows it, its text opened.
func (s *Server) openInboxMessage(m *verifyd.InboxMessage) inboxMessage {
	body, code := unreadable, ""
	if text, err := s.cfg.Keyring.Open(m.RequestID, m.Sealed); err == nil {
		body = string(text)
		code = s.messageCode(m, body)
	}
	return inboxMessage{
		ID:        strconv.FormatInt(m.ID, 10),
		RequestID: m.RequestID,
		To:        m.To,
		From:      m.From,
		Body:      body,
		Created:   timestamp(m.Created),
		Code:      code,
	}
}

// maxCodeCandidates bounds the digit runs of one text tried as its code: a
// template holds its code among a few other numbers at most, and each try
// is an HMAC, for each of up to inboxLimit messages at each poll.
const maxCodeCandidates = 8

// messageCode is the run of digits in body that is m's code, found by
// checking each run of a code's possible length against the verification's
// code MAC, as validate would: a text may hold other numbers before its
// code (a year, an order number), so which one is the code cannot be
// guessed. It is "" when none matches: the verification was purged, or its
// MAC was made under another server key, or the template put its code
// against other digits.
func (s *Server) messageCode(m *verifyd.InboxMessage, body string) string {
	if m.PhoneNumber == "" {
		// No verification (purged): nothing to check against.
		return ""
	}
	tried := 0
	for i := 0; i < len(body) && tried < maxCodeCandidates; {
		if !isDigit(body[i]) {
			i++
			continue
		}
		j := i
		for j < len(body) && isDigit(body[j]) {
			j++
		}
		run := body[i:j]
		i = j
		if len(run) < verifyd.MinCodeLength || len(run) > verifyd.MaxCodeLength {
			continue
		}
		tried++
		if s.cfg.Keyring.Equal(s.cfg.Keyring.MAC(m.RequestID, m.PhoneNumber, run), m.CodeMAC) {
			return run
		}
	}
	return ""
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
