package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"verifyd/smpp/smpptest"
)

// number returns the i-th of a run of distinct valid UK mobile numbers,
// spread over prefixes so that no per-prefix limit is reached.
func number(i int) string {
	return fmt.Sprintf("447979%02d0%03d", i/50, i%50)
}

var codeRE = regexp.MustCompile(`^Your verification code is (\d{6})$`)

// messagesByNumber reads what the node SMSC received: each whole message's
// text, by destination number.
func messagesByNumber(n *smpptest.Node) map[string][]string {
	dest := map[string]string{}
	for _, ev := range n.Events(0) {
		if ev.Event == "submit" {
			dest[ev.MessageID] = ev.Dest.Addr
		}
	}
	out := map[string][]string{}
	for _, ev := range n.Events(0) {
		if ev.Event == "message" && len(ev.MessageIDs) > 0 {
			to := dest[ev.MessageIDs[0]]
			out[to] = append(out[to], ev.Text)
		}
	}
	return out
}

// TestSMPPEndToEnd runs verifyd against the node-smpp SMSC: 500 creates,
// every message submitted once with its code, every delivery receipted
// Delivered, every code validates.
func TestSMPPEndToEnd(t *testing.T) {
	t.Parallel()
	node := smpptest.StartNode(t, "verifyd", "s3cret", "AUTO_RECEIPT=DELIVRD")
	s := startServer(t, "--sms", node.URL("verifyd", "s3cret", "window=20"))

	const total = 500
	ids := make([]string, total)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				ids[i] = s.send(t, number(i))
			}
		})
	}
	for i := range total {
		work <- i
	}
	close(work)
	wg.Wait()

	for _, id := range ids {
		waitDelivery(t, s, id, "Delivered")
	}
	got := messagesByNumber(node)
	for i, id := range ids {
		s.validateTheOneText(t, id, number(i), got[number(i)])
	}
}

// validateTheOneText checks that to received exactly one text, and that
// the code in it verifies request id: what the carrier got is the code.
func (s *server) validateTheOneText(t *testing.T, id, to string, texts []string) {
	t.Helper()
	if len(texts) != 1 {
		t.Fatalf("%s received %d texts, want 1", to, len(texts))
	}
	m := codeRE.FindStringSubmatch(texts[0])
	if m == nil {
		t.Fatalf("%s received %q", to, texts[0])
	}
	if st, status := s.validate(t, id, m[1]); st != 200 || status != "CodeVerified" {
		t.Fatalf("validating %s with the code the carrier got: %d %s", id, st, status)
	}
}

// waitDelivery waits until the request's delivery reaches state.
func waitDelivery(t *testing.T, s *server, id, state string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		a := s.call(t, "GET", "/webapi/verify/"+id, "")
		if a.status != 200 {
			t.Fatalf("GET %s: %d %s", id, a.status, a.body)
		}
		var rec struct {
			Delivery struct{ State, MessageID string }
		}
		json.Unmarshal(a.body, &rec)
		if rec.Delivery.State == state {
			if rec.Delivery.MessageID == "" {
				t.Fatalf("%s is %s without a carrier message id", id, state)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: delivery %+v, want %s", id, rec.Delivery, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSMPPKill9UnderLoad kills verifyd with SIGKILL while it creates and
// submits to the node SMSC. After a restart every request answered 202 is
// delivered (at least once, always with the same text) and its code
// validates.
func TestSMPPKill9UnderLoad(t *testing.T) {
	t.Parallel()
	node := smpptest.StartNode(t, "verifyd", "s3cret", "AUTO_RECEIPT=DELIVRD")
	sms := node.URL("verifyd", "s3cret", "window=10")
	p, db, user, secret := devProc(t, "--sms", sms, "--delivery-lease", "2s")
	ids := signalUnderLoad(t, p, user, secret, os.Kill)

	p = startProc(t, nil, "--dev", "--db", "sqlite:"+db, "--sms", sms, "--delivery-lease", "2s")
	s := &server{url: p.url, user: user, secret: secret}
	numbers := map[string]string{}
	for _, id := range ids {
		waitDelivery(t, s, id, "Delivered")
		a := s.call(t, "GET", "/webapi/verify/"+id, "")
		numbers[id] = a.json(t)["phoneNumber"].(string)
	}
	perNumber := map[string]int{}
	for _, id := range ids {
		perNumber[numbers[id]]++
	}
	got := messagesByNumber(node)
	resent := 0
	for _, id := range ids {
		texts := got[numbers[id]]
		codes := map[string]bool{}
		for _, text := range texts {
			if m := codeRE.FindStringSubmatch(text); m != nil {
				codes[m[1]] = true
			}
		}
		if len(texts) > len(codes) {
			resent++
		}
		if perNumber[numbers[id]] == 1 && len(codes) != 1 {
			t.Fatalf("request %s reached the SMSC with %d different codes: %s", id, len(codes), strings.Join(texts, " | "))
		}
		verified := false
		for code := range codes {
			if st, status := s.validate(t, id, code); st == 200 && status == "CodeVerified" {
				verified = true
				break
			}
		}
		if !verified {
			t.Fatalf("request %s: none of the codes the SMSC got for %s (%v) validates", id, numbers[id], strings.Join(texts, " | "))
		}
	}
	t.Logf("%d answered requests, all delivered and verified; %d numbers got a text twice (at least once, same text)", len(ids), resent)
}

// TestSMPPSIGTERM stops verifyd with SIGTERM while it submits to the node
// SMSC: it unbinds before it exits 0, and every answered request was either
// submitted before the stop or is delivered after a restart.
func TestSMPPSIGTERM(t *testing.T) {
	t.Parallel()
	node := smpptest.StartNode(t, "verifyd", "s3cret", "AUTO_RECEIPT=DELIVRD")
	sms := node.URL("verifyd", "s3cret", "window=10")
	p, db, user, secret := devProc(t, "--sms", sms)
	mark := node.Mark()
	ids := signalUnderLoad(t, p, user, secret, syscall.SIGTERM)
	node.Wait(t, mark, func(e smpptest.NodeEvent) bool { return e.Event == "unbind" }) // verifyd's, before it exited
	p = startProc(t, nil, "--dev", "--db", "sqlite:"+db, "--sms", sms)
	s := &server{url: p.url, user: user, secret: secret}
	for _, id := range ids {
		waitDelivery(t, s, id, "Delivered")
	}
	t.Logf("%d answered requests, all delivered", len(ids))
}

// TestSMPPUnbindsWhenAClientHoldsTheStop: a client that keeps a request in
// flight past --shutdown-timeout must not use up the time the SMPP client
// needs to unbind; a bind dropped without one can keep the carrier refusing
// the next start's bind for a while.
func TestSMPPUnbindsWhenAClientHoldsTheStop(t *testing.T) {
	t.Parallel()
	smsc := smpptest.NewServer(t, smpptest.Options{SystemID: "verifyd", Password: "s3cret"})
	p, _, user, secret := devProc(t, "--sms", smsc.URL("verifyd", "s3cret", ""), "--shutdown-timeout", "8s")
	if !smsc.Wait(60*time.Second, func() bool { return smsc.Counters().Binds > 0 }) {
		t.Fatal("verifyd never bound")
	}
	holdRequest(t, p, user, secret)
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil {
			t.Fatalf("verifyd exited with %v, want status 0", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("verifyd did not stop")
	}
	if c := smsc.Counters(); c.Unbinds != 1 {
		t.Fatalf("the SMSC got %d unbinds, want 1; verifyd's log:\n%s", c.Unbinds, p.logs)
	}
}

// TestDevBannerSaysWhereMessagesGo: --dev with --sms smpp://... sends to
// the SMSC, so its banner must not promise the inbox.
func TestDevBannerSaysWhereMessagesGo(t *testing.T) {
	t.Parallel()
	smsc := smpptest.NewServer(t, smpptest.Options{SystemID: "verifyd", Password: "s3cret"})
	s := launch(t, t.TempDir(), "--sms", smsc.URL("verifyd", "s3cret", ""))
	banner := s.stdout.String()
	if !strings.Contains(banner, "messages go to the SMSC at "+smsc.Addr()) || strings.Contains(banner, "/inbox") {
		t.Errorf("banner of --dev --sms smpp://...:\n%s", banner)
	}
	s = startServer(t)
	if banner := s.stdout.String(); !strings.Contains(banner, "messages go to the inbox") || !strings.Contains(banner, s.url+"/inbox") {
		t.Errorf("banner of --dev:\n%s", banner)
	}
}
