package http

import (
	_ "embed"
	"net/http"
	"strconv"

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
}

// unreadable is the body shown for a message sealed under another server
// key (a dev database kept across a key change): the page still lists it,
// and says why its text is missing.
const unreadable = "[sealed under another server key]"

// handleInboxPage is GET /inbox: a page that lists the dev inbox and keeps
// itself current. It carries no data; the page's script fetches the JSON,
// and builds the list with textContent, so a message body can never become
// markup.
func (s *Server) handleInboxPage(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(inboxPage)))
	w.WriteHeader(http.StatusOK)
	w.Write(inboxPage)
	return nil
}

// handleInboxMessages is GET /inbox/messages?to=DIGITS: the messages the
// dev sender "sent", newest first, their texts opened.
func (s *Server) handleInboxMessages(w http.ResponseWriter, r *http.Request) error {
	query := r.URL.Query().Get("to")
	to := phone.Normalize(query)
	out := []inboxMessage{}
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
		body := unreadable
		if text, err := s.cfg.Keyring.Open(m.RequestID, m.Sealed); err == nil {
			body = string(text)
		}
		out = append(out, inboxMessage{
			ID:        strconv.FormatInt(m.ID, 10),
			RequestID: m.RequestID,
			To:        m.To,
			From:      m.From,
			Body:      body,
			Created:   timestamp(m.Created),
		})
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
	return nil
}
