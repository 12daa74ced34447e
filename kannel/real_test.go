package kannel_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"verifyd"
	"verifyd/kannel"
	"verifyd/otp"
	"verifyd/smpp/smpptest"
)

// kannelBin is where Debian's kannel package puts bearerbox and smsbox.
const kannelBin = "/usr/sbin"

// freePorts returns n TCP ports of 127.0.0.1 that nothing listens on now.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var lns []net.Listener
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// startBox runs one Kannel box on conf until the test ends. It dies with
// the test binary (Pdeathsig), and is killed when the test ends whatever
// its outcome.
func startBox(t *testing.T, name, conf, dir string) {
	t.Helper()
	out, err := os.Create(filepath.Join(dir, name+".out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(kannelBin, name), conf)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		// Pdeathsig fires when the forking thread ends: keep it for the
		// child's life.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		cmd.Wait()
		close(done)
	}()
	if err := <-started; err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
			t.Logf("%s log:\n%s", name, tail(string(b), 4000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestRealKannel sends through a real Kannel (bearerbox and smsbox, of the
// Debian kannel package) whose SMSC is an SMPP peer of this repository: the
// text reaches the SMSC as sent, in GSM or UCS-2, to an international
// number, and the SMSC's delivery
// receipt comes back through Kannel's DLR URL as a report ParseReceipt
// takes for Delivered, again after a 503 when smsbox sets
// http-request-retry, as the README advises.
func TestRealKannel(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(filepath.Join(kannelBin, "bearerbox")); err != nil {
		t.Fatalf("Kannel is not installed (no %s/bearerbox): run make test-deps, or apt-get install -y kannel", kannelBin)
	}
	dir := t.TempDir()
	smsc := smpptest.NewServer(t, smpptest.Options{SystemID: "kannel", Password: "smscpw"})
	_, smscPort, _ := net.SplitHostPort(smsc.Addr())
	ports := freePorts(t, 3)
	admin, box, sendsms := ports[0], ports[1], ports[2]

	keyring, err := otp.NewKeyring(make([]byte, otp.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	// verifyd's report route, as far as this test needs it.
	type report struct {
		r     verifyd.Receipt
		final bool
		err   error
	}
	reports := make(chan report, 10)
	var calls atomic.Int32
	var sender *kannel.Sender
	var ready sync.WaitGroup
	ready.Add(1)
	receipts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ready.Wait()
		rec, final, err := sender.ParseReceipt(r.URL.Query())
		if r.URL.Path != kannel.ReceiptPath {
			err = fmt.Errorf("report to %s", r.URL.Path)
		}
		if calls.Add(1) == 1 {
			// As verifyd answers when its store fails: Kannel, told to
			// retry failed requests, must send the report again.
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		reports <- report{rec, final, err}
	}))
	defer receipts.Close()

	conf := filepath.Join(dir, "kannel.conf")
	err = os.WriteFile(conf, fmt.Appendf(nil, `group = core
admin-port = %[1]d
admin-interface = 127.0.0.1
admin-password = admin
smsbox-port = %[2]d
smsbox-interface = 127.0.0.1
log-file = %[4]q
log-level = 0
dlr-storage = internal

group = smsc
smsc = smpp
smsc-id = fake
host = 127.0.0.1
port = %[5]s
transceiver-mode = true
smsc-username = kannel
smsc-password = smscpw
system-type = VMA
reconnect-delay = 1
denied-prefix = "+1;1"

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = %[2]d
sendsms-port = %[3]d
sendsms-interface = 127.0.0.1
log-file = %[6]q
log-level = 0
http-request-retry = 3
http-queue-delay = 1

group = sendsms-user
username = verifyd
password = "kan#nel"
max-messages = 3
concatenation = true
`, admin, box, sendsms, filepath.Join(dir, "bearerbox.log"), smscPort, filepath.Join(dir, "smsbox.log")), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	startBox(t, "bearerbox", conf, dir)
	if !smsc.Wait(10*time.Second, func() bool { return smsc.Counters().Binds > 0 }) {
		t.Fatal("bearerbox never bound to the SMSC")
	}
	startBox(t, "smsbox", conf, dir)

	cfg, err := kannel.ParseURL(fmt.Sprintf("http://verifyd:kan%%23nel@127.0.0.1:%d/cgi-bin/sendsms?timeout=2s&receipts=%s", sendsms, receipts.URL))
	if err != nil {
		t.Fatal(err)
	}
	sender, err = kannel.New(cfg, kannel.Options{Signer: keyring})
	if err != nil {
		t.Fatal(err)
	}
	ready.Done()
	defer sender.Close(context.Background())

	send := func(text string) []string {
		t.Helper()
		m := &verifyd.SMS{To: "447979080215", From: "MyBrand", Text: text, ValidUntil: time.Now().Add(10 * time.Minute)}
		deadline := time.Now().Add(10 * time.Second)
		for {
			ids, err := sender.Send(context.Background(), m)
			if err == nil {
				return ids
			}
			// smsbox listens a moment after it starts, and takes texts
			// once it is connected to bearerbox.
			if se := verifyd.SendErrorOf(err); se.Kind == verifyd.SendPermanent || time.Now().After(deadline) {
				t.Fatalf("Send through Kannel: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	ids := send("Your verification code is 123456")
	subs := smsc.WaitSubmits(t, 1, 10*time.Second)
	if s := subs[0]; s.Text != "Your verification code is 123456" || s.DataCoding != 0 || s.Dest.Addr != "447979080215" || s.Source.Addr != "MyBrand" {
		t.Fatalf("the SMSC got %q (data_coding %d) from %q to %q", s.Text, s.DataCoding, s.Source.Addr, s.Dest.Addr)
	}
	// Kannel sends a number without a leading + as a national one (TON 2):
	// the SMSC would read 44... as a number inside its own country.
	if d := subs[0].Dest; d.TON != 1 {
		t.Fatalf("the SMSC got the destination with TON %d, want 1 (international)", d.TON)
	}
	if subs[0].RegisteredDelivery&1 == 0 {
		t.Fatalf("Kannel did not ask the SMSC for a receipt (registered_delivery %#x)", subs[0].RegisteredDelivery)
	}
	if _, err := smsc.SendReceipt(smpptest.Receipt{ID: subs[0].MessageID, Stat: "DELIVRD"}); err != nil {
		t.Fatal(err)
	}
	select {
	case rep := <-reports:
		if rep.err != nil || !rep.final || rep.r.CarrierID != ids[0] || rep.r.State != verifyd.DeliveryDelivered {
			t.Fatalf("Kannel's report: %+v, %v, %v; want %s Delivered", rep.r, rep.final, rep.err, ids[0])
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery report came back through Kannel")
	}

	send("Ваш код 654321")
	subs = smsc.WaitSubmits(t, 2, 10*time.Second)
	if s := subs[1]; s.Text != "Ваш код 654321" || s.DataCoding != 8 {
		t.Fatalf("the SMSC got %q (data_coding %d), want the Cyrillic text in UCS-2", s.Text, s.DataCoding)
	}
	if _, err := smsc.SendReceipt(smpptest.Receipt{ID: subs[1].MessageID, Stat: "UNDELIV"}); err != nil {
		t.Fatal(err)
	}
	select {
	case rep := <-reports:
		if rep.err != nil || !rep.final || rep.r.State != verifyd.DeliveryUndeliverable {
			t.Fatalf("Kannel's report of an undelivered text: %+v, %v, %v", rep.r, rep.final, rep.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery report came back through Kannel")
	}

	// The wrong password: Kannel's 403, which must not fail the message.
	bad := cfg
	bad.Password = "wrong"
	bs, _ := kannel.New(bad, kannel.Options{Signer: keyring})
	_, err = bs.Send(context.Background(), &verifyd.SMS{To: "447979080215", From: "MyBrand", Text: "Code 111111"})
	if se := verifyd.SendErrorOf(err); err == nil || se.Kind != verifyd.SendTemporary || !strings.Contains(se.Reason, "credentials") {
		t.Fatalf("Send with the wrong password: %v", err)
	}

	// A number no SMSC of Kannel's may take (its denied-prefix): also a
	// 403, but Kannel's "Not routable. Do not try again.", which no retry
	// changes.
	_, err = sender.Send(context.Background(), &verifyd.SMS{To: "15005550006", From: "MyBrand", Text: "Code 222222"})
	if se := verifyd.SendErrorOf(err); err == nil || se.Kind != verifyd.SendPermanent || strings.Contains(se.Reason, "credentials") {
		t.Fatalf("Send that Kannel cannot route: %v (kind %d), want a permanent failure", err, verifyd.SendErrorOf(err).Kind)
	}

	// A sender id that is a phone number goes as international, as SMPP's
	// sender sends it; a short code as a number of the carrier's country.
	for i, tc := range []struct {
		from string
		ton  byte
	}{{"447700900000", 1}, {"+447700900001", 1}, {"84433", 2}} {
		if _, err := sender.Send(context.Background(), &verifyd.SMS{To: "447979080215", From: tc.from, Text: "Code 333333"}); err != nil {
			t.Fatal(err)
		}
		s := smsc.WaitSubmits(t, 3+i, 10*time.Second)[2+i]
		if want := strings.TrimPrefix(tc.from, "+"); s.Source.Addr != want || s.Source.TON != tc.ton {
			t.Errorf("from %q: the SMSC got source %q with TON %d, want %q with TON %d", tc.from, s.Source.Addr, s.Source.TON, want, tc.ton)
		}
	}

	// With max-messages and concatenation = true, as the README asks, a
	// long text reaches the SMSC whole, in concatenated parts, and Kannel
	// reports once for all of them.
	long := strings.Repeat("Your verification code is 123456. ", 6)
	ids = send(long)
	subs = smsc.WaitSubmits(t, 7, 10*time.Second)
	if a, b := subs[5], subs[6]; a.Total != 2 || b.Total != 2 || a.Text+b.Text != long {
		t.Fatalf("a %d-character text reached the SMSC as %q (part %d of %d) and %q (part %d of %d)",
			len(long), a.Text, a.Part, a.Total, b.Text, b.Part, b.Total)
	}
	for _, s := range subs[5:] {
		if _, err := smsc.SendReceipt(smpptest.Receipt{ID: s.MessageID, Stat: "DELIVRD"}); err != nil {
			t.Fatal(err)
		}
	}
	timeout := time.After(10 * time.Second)
	for {
		var rep report
		select {
		case rep = <-reports:
		case <-timeout:
			t.Fatal("no delivery report came back for a long text")
		}
		if rep.err == nil && rep.r.CarrierID != ids[0] {
			continue // the refused message's report (type 16)
		}
		if rep.err != nil || !rep.final || rep.r.State != verifyd.DeliveryDelivered {
			t.Fatalf("Kannel's report of a long text: %+v, %v, %v; want %s Delivered", rep.r, rep.final, rep.err, ids[0])
		}
		break
	}
}
