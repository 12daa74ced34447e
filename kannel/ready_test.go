package kannel

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"verifyd"
)

// /readyz stood at ready while every send failed at a gateway that answers
// the port but takes no text: a certificate the sender does not trust, or
// credentials the gateway refuses. Like a gateway that cannot be reached,
// both now make the sender unready until a send goes through.
func TestReadyFailsWhileNoSendCanGoThrough(t *testing.T) {
	t.Parallel()
	sms := &verifyd.SMS{To: "447979080215", From: "X1", Text: "Code 123456"}

	untrusted := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	defer untrusted.Close()
	s := newSender(t, sendURL(untrusted.URL, ""), nil)
	if _, err := s.Send(context.Background(), sms); err == nil {
		t.Fatal("a gateway with an untrusted certificate took the text")
	}
	if s.Ready() == nil {
		t.Error("Ready = nil after the gateway's certificate was refused")
	}

	g := newGateway(t)
	s = newSender(t, sendURL(g.URL, ""), nil)
	g.answer(http.StatusForbidden, "Authorization failed for sendsms")
	if _, err := s.Send(context.Background(), sms); err == nil {
		t.Fatal("a gateway that refused the credentials took the text")
	}
	if s.Ready() == nil {
		t.Error("Ready = nil after the gateway refused the credentials")
	}
	g.answer(http.StatusAccepted, "0: Accepted for delivery")
	if _, err := s.Send(context.Background(), sms); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(); err != nil {
		t.Errorf("Ready after a send went through: %v", err)
	}
}
