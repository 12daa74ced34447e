package http

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"verifyd"
)

// ReceiptReader reads a delivery report that an HTTP gateway sends back to
// verifyd (the Kannel sender's DLR URL).
type ReceiptReader interface {
	// ReceiptPath is the route of the reports: the path of the URL the
	// reader gives the gateway for them.
	ReceiptPath() string
	// ParseReceipt reads the report's query: the receipt to record and
	// true, false for a report that changes nothing, or a *verifyd.Error.
	// It authenticates the report itself.
	ParseReceipt(q url.Values) (verifyd.Receipt, bool, error)
}

// receiptTimeout bounds recording one report, so a database that hangs
// answers the gateway 503 (it tries again) rather than holding its request.
const receiptTimeout = 10 * time.Second

// handleKannelReceipt is GET at the reader's ReceiptPath
// (/sms/receipts/kannel): a Kannel delivery report.
// Kannel cannot send Basic credentials, so the report carries its own: a
// token over its reference that only this server's key makes. It answers
// 200 only once the receipt is committed; Kannel's smsbox tries a failed
// report again when its http-request-retry is set.
func (s *Server) handleKannelReceipt(w http.ResponseWriter, r *http.Request) error {
	rec, final, err := s.cfg.Receipts.ParseReceipt(r.URL.Query())
	if err != nil {
		return err // the query is never logged: the token is in it
	}
	addLog(r.Context(), slog.String("ref", r.URL.Query().Get("ref")), slog.String("delivery", string(rec.State)))
	if final {
		recorder := s.cfg.Recorder
		if recorder == nil {
			recorder = s.cfg.Store
		}
		ctx, cancel := context.WithTimeout(r.Context(), receiptTimeout)
		defer cancel()
		if err := recorder.RecordReceipt(ctx, rec); err != nil {
			var e *verifyd.Error
			if errors.As(err, &e) {
				return err
			}
			s.log.Error("recording a gateway receipt", "request", requestID(r.Context()), "err", err)
			return verifyd.Errorf(verifyd.EUNAVAILABLE, "The receipt could not be recorded; send it again.")
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "recorded"})
	return nil
}
