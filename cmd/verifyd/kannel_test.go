package main

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeKannel is a Kannel smsbox's sendsms interface: it takes each text
// with 202, and when the text asks for delivery reports it calls the DLR
// URL back with report type dlrType, after answering, as Kannel does.
type fakeKannel struct {
	*httptest.Server
	dlrType string
	mu      sync.Mutex
	texts   map[string][]string // by destination
	reports []int               // the status of each DLR URL call
	asked   int                 // texts that asked for reports (a DLR URL)
	calls   sync.WaitGroup
}

func newFakeKannel(t *testing.T, dlrType string) *fakeKannel {
	k := &fakeKannel{dlrType: dlrType, texts: map[string][]string{}}
	k.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/cgi-bin/sendsms" || q.Get("username") != "verifyd" || q.Get("password") != "kan#nel" {
			http.Error(w, "Authorization failed for sendsms", http.StatusForbidden)
			return
		}
		k.mu.Lock()
		k.texts[q.Get("to")] = append(k.texts[q.Get("to")], q.Get("text"))
		if q.Has("dlr-url") || q.Has("dlr-mask") {
			k.asked++
		}
		k.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte("0: Accepted for delivery"))
		if dlr := q.Get("dlr-url"); dlr != "" && q.Get("dlr-mask") == "19" {
			k.calls.Go(func() { k.report(strings.Replace(dlr, "%d", k.dlrType, 1)) })
		}
	}))
	t.Cleanup(func() { k.Close(); k.calls.Wait() })
	return k
}

func (k *fakeKannel) report(u string) {
	resp, err := http.Get(u)
	status := -1
	if err == nil {
		resp.Body.Close()
		status = resp.StatusCode
	}
	k.mu.Lock()
	k.reports = append(k.reports, status)
	k.mu.Unlock()
}

// sms is the --sms URL of the fake gateway with the query opts.
func (k *fakeKannel) sms(opts string) string {
	return "http://verifyd:kan%23nel@" + strings.TrimPrefix(k.URL, "http://") + "/cgi-bin/sendsms?" + opts
}

// TestKannelEndToEnd: serve --sms http://...?receipts=BASE sends each code
// through the Kannel sendsms interface, and the delivery report Kannel sends
// back to BASE marks the message Delivered.
func TestKannelEndToEnd(t *testing.T) {
	t.Parallel()
	// verifyd's address is known only once it runs; Kannel reaches it
	// through a proxy in front, as it would in production.
	var backend atomic.Pointer[url.URL]
	front := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(backend.Load())
	}})
	defer front.Close()
	k := newFakeKannel(t, "1")
	s := startServer(t, "--sms", k.sms("smsc=carrier1&receipts="+url.QueryEscape(front.URL)))
	u, _ := url.Parse(s.url)
	backend.Store(u)

	ids := make([]string, 5)
	for i := range ids {
		ids[i] = s.send(t, number(i))
	}
	for i, id := range ids {
		waitDelivery(t, s, id, "Delivered")
		a := s.call(t, "GET", "/webapi/verify/"+id, "")
		if ref := a.json(t)["delivery"].(map[string]any)["messageId"].(string); !strings.HasPrefix(ref, "kannel-") {
			t.Fatalf("%s: messageId %q, want the sender's kannel- reference", id, ref)
		}
		k.mu.Lock()
		texts := k.texts["+"+number(i)] // international, as Kannel needs it
		k.mu.Unlock()
		s.validateTheOneText(t, id, number(i), texts)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, st := range k.reports {
		if st != http.StatusOK {
			t.Fatalf("verifyd answered a delivery report %d", st)
		}
	}
	if logs := s.stderr.String(); strings.Contains(logs, "kan#nel") || strings.Contains(logs, "kan%23nel") || strings.Contains(logs, "token=") {
		t.Fatalf("the log shows the gateway password or a report token:\n%s", logs)
	}
}

// Without receipts=, no report is asked for and the message stays
// Submitted; a gateway that refuses the credentials keeps it queued.
func TestKannelWithoutReceipts(t *testing.T) {
	t.Parallel()
	k := newFakeKannel(t, "1")
	s := startServer(t, "--sms", k.sms(""))
	id := s.send(t, number(0))
	waitDelivery(t, s, id, "Submitted")
	// Counted as each text comes, not by the reports, which are sent only
	// after the answer and could still be on their way.
	k.mu.Lock()
	asked := k.asked
	k.mu.Unlock()
	if asked != 0 {
		t.Fatalf("%d delivery reports asked for without receipts=", asked)
	}

	wrong := startServer(t, "--sms", strings.Replace(k.sms(""), "kan%23nel", "wrong", 1))
	id = wrong.send(t, number(1))
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := wrong.call(t, "GET", "/webapi/verify/"+id, "")
		d, _ := a.json(t)["delivery"].(map[string]any)
		if reason, _ := d["error"].(string); d["state"] == "Queued" && strings.Contains(reason, "credentials") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with the wrong password: delivery %v, want Queued for a retry, its reason about the credentials", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
