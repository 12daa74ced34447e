package smpp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"verifyd"
	"verifyd/smpp"
	"verifyd/smpp/smpptest"
)

func TestReceiptRecordedThenAcknowledged(t *testing.T) {
	t.Parallel()
	srv, c, rec := newPair(t, "", nil)
	ids, err := c.Send(context.Background(), sms("code 123456"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		r     smpptest.Receipt
		state verifyd.DeliveryState
		errs  string
	}{
		{smpptest.Receipt{ID: ids[0], Stat: "DELIVRD", Text: "code 123456"}, verifyd.DeliveryDelivered, ""},
		{smpptest.Receipt{ID: ids[0], Stat: "UNDELIV", Err: "034", TLV: true}, verifyd.DeliveryUndeliverable, "UNDELIV err:034"},
		{smpptest.Receipt{ID: "000" + ids[0], Stat: "EXPIRED"}, verifyd.DeliveryExpired, "EXPIRED err:000"},
	}
	for i, tc := range cases {
		st, err := srv.SendReceipt(tc.r)
		if err != nil || st != smpp.StatusOK {
			t.Fatalf("receipt %d: deliver_sm_resp %v, %v", i, st, err)
		}
		got := rec.all()
		if len(got) != i+1 {
			t.Fatalf("receipt %d acknowledged before it was recorded", i)
		}
		r := got[i]
		if r.CarrierID != ids[0] || r.State != tc.state || r.Error != tc.errs {
			t.Fatalf("receipt %d recorded as %+v", i, r)
		}
	}
}

// TestReceiptAsDataSM: some SMSCs send receipts as data_sm (SMPP 3.4 §4.7),
// the text in message_payload or only the TLVs. They are recorded like a
// deliver_sm's and answered with data_sm_resp, not a generic_nack that would
// drop them.
func TestReceiptAsDataSM(t *testing.T) {
	t.Parallel()
	srv, c, rec := newPair(t, "", nil)
	ids, err := c.Send(context.Background(), sms("code 123456"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		r     smpptest.Receipt
		state verifyd.DeliveryState
	}{
		{smpptest.Receipt{ID: ids[0], Stat: "UNDELIV", Err: "034", DataSM: true}, verifyd.DeliveryUndeliverable},
		{smpptest.Receipt{ID: ids[0], Stat: "DELIVRD", TLV: true, DataSM: true}, verifyd.DeliveryDelivered},
	}
	for i, tc := range cases {
		st, err := srv.SendReceipt(tc.r)
		if err != nil || st != smpp.StatusOK {
			t.Fatalf("receipt %d: data_sm_resp %v, %v", i, st, err)
		}
		got := rec.all()
		if len(got) != i+1 {
			t.Fatalf("receipt %d acknowledged before it was recorded", i)
		}
		if r := got[i]; r.CarrierID != ids[0] || r.State != tc.state {
			t.Fatalf("receipt %d recorded as %+v", i, r)
		}
	}
}

func TestReceiptAckWaitsForTheRecorder(t *testing.T) {
	t.Parallel()
	srv, c, rec := newPair(t, "", nil)
	_ = c
	rec.entered = make(chan struct{}, 1)
	rec.block = make(chan struct{})
	done := make(chan smpp.Status, 1)
	go func() {
		st, err := srv.SendReceipt(smpptest.Receipt{ID: "1", Stat: "DELIVRD"})
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	<-rec.entered
	// The client must still answer enquire_link while a receipt is being
	// recorded, and must not have acknowledged the receipt.
	if n := srv.EnquireLink(2 * time.Second); n != 1 {
		t.Fatalf("enquire_link answered on %d sessions while recording", n)
	}
	select {
	case st := <-done:
		t.Fatalf("receipt acknowledged (%v) before the recorder returned", st)
	default:
	}
	close(rec.block)
	if st := <-done; st != smpp.StatusOK {
		t.Fatalf("deliver_sm_resp %v", st)
	}
}

func TestReceiptRecorderFailureAsksForRedelivery(t *testing.T) {
	t.Parallel()
	srv, _, rec := newPair(t, "", nil)
	rec.fail = func(verifyd.Receipt) error { return errors.New("database is down") }
	st, err := srv.SendReceipt(smpptest.Receipt{ID: "1", Stat: "DELIVRD"})
	if err != nil || st != smpp.StatusXTAppn {
		t.Fatalf("deliver_sm_resp %v (%v), want ESME_RX_T_APPN", st, err)
	}
}

// TestReceiptThatPanicsIsRejectedNotFatal: a panic while handling one
// deliver_sm (here the recorder's; before, the receipt parser's on bytes
// that are not UTF-8) rejects that PDU for good and leaves the session, and
// the process, running: the next receipt is recorded.
func TestReceiptThatPanicsIsRejectedNotFatal(t *testing.T) {
	t.Parallel()
	srv, _, rec := newPair(t, "", nil)
	rec.fail = func(r verifyd.Receipt) error {
		if r.CarrierID == "1" {
			panic("recorder bug")
		}
		return nil
	}
	st, err := srv.SendReceipt(smpptest.Receipt{ID: "1", Stat: "DELIVRD"})
	if err != nil || st != smpp.StatusXPAppn {
		t.Fatalf("deliver_sm_resp %v (%v), want ESME_RX_P_APPN", st, err)
	}
	// Bytes that are not UTF-8 before the last key once made the parser
	// cut the text out of its bounds.
	st, err = srv.SendReceipt(smpptest.Receipt{ID: "\xad\xad\xad2", Stat: "DELIVRD"})
	if err != nil || st != smpp.StatusOK {
		t.Fatalf("deliver_sm_resp %v (%v), want 0", st, err)
	}
	if got := rec.wait(t, 1); got[0].CarrierID != smpp.NormalizeID("\xad\xad\xad2") {
		t.Fatalf("recorded %+v", got)
	}
}

func TestReceiptBeforeItsSubmitResponseIsRecorded(t *testing.T) {
	t.Parallel()
	srv, c, rec := newPair(t, "", nil)
	srv.OnSubmit(func(smpptest.Submit) smpptest.Reply {
		return smpptest.Reply{ReceiptFirst: &smpptest.Receipt{Stat: "DELIVRD", TLV: true}}
	})
	ids, err := c.Send(context.Background(), sms("x"))
	if err != nil {
		t.Fatal(err)
	}
	got := rec.wait(t, 1)
	if got[0].CarrierID != ids[0] || got[0].State != verifyd.DeliveryDelivered {
		t.Fatalf("recorded %+v, submitted as %v", got[0], ids)
	}
}

func TestDuplicatedReceiptsAreEachRecordedAndAcknowledged(t *testing.T) {
	t.Parallel()
	srv, _, rec := newPair(t, "", nil)
	for range 2 {
		if st, err := srv.SendReceipt(smpptest.Receipt{ID: "55", Stat: "DELIVRD"}); err != nil || st != smpp.StatusOK {
			t.Fatalf("deliver_sm_resp %v, %v", st, err)
		}
	}
	if got := rec.all(); len(got) != 2 || got[0].CarrierID != got[1].CarrierID || got[0].State != got[1].State {
		t.Fatalf("recorded %+v, want the same receipt twice (the store deduplicates)", got)
	}
}

func TestIntermediateAndMobileOriginatedAreAcknowledgedNotRecorded(t *testing.T) {
	t.Parallel()
	srv, _, rec := newPair(t, "", nil)
	for _, stat := range []string{"ENROUTE", "ACCEPTD", "NOROUTE"} {
		if st, err := srv.SendReceipt(smpptest.Receipt{ID: "1", Stat: stat}); err != nil || st != smpp.StatusOK {
			t.Fatalf("%s: deliver_sm_resp %v, %v", stat, st, err)
		}
	}
	mo := &smpp.PDU{ID: smpp.DeliverSM, Seq: 900, ShortMessage: []byte("STOP")}
	b, _ := mo.MarshalBinary()
	srv.SendRaw(b)
	// A receipt sent after them arrives after them on the same session.
	if _, err := srv.SendReceipt(smpptest.Receipt{ID: "2", Stat: "DELIVRD"}); err != nil {
		t.Fatal(err)
	}
	if got := rec.all(); len(got) != 1 || got[0].CarrierID != "2" {
		t.Fatalf("recorded %+v, want only the final receipt", got)
	}
}

func TestReceiptIDBaseConversion(t *testing.T) {
	t.Parallel()
	srv, c, rec := newPair(t, "receipt_id_base=hex2dec", nil)
	srv.OnSubmit(nil)
	ids, err := c.Send(context.Background(), sms("x"))
	if err != nil {
		t.Fatal(err)
	}
	var n big.Int
	n.SetString(ids[0], 10)
	if _, err := srv.SendReceipt(smpptest.Receipt{ID: "0" + n.Text(16), Stat: "DELIVRD"}); err != nil {
		t.Fatal(err)
	}
	if got := rec.wait(t, 1); got[0].CarrierID != ids[0] {
		t.Fatalf("receipt matched as %q, submitted as %q", got[0].CarrierID, ids[0])
	}
}

func TestSMSCEnquireLinkAnsweredWhileWindowFull(t *testing.T) {
	t.Parallel()
	srv, c, _ := newPair(t, "window=2", nil)
	srv.OnSubmit(func(smpptest.Submit) smpptest.Reply { return smpptest.Reply{Withhold: true} })
	for range 3 {
		go c.Send(context.Background(), sms("x"))
	}
	srv.WaitSubmits(t, 2, 5*time.Second)
	if n := srv.EnquireLink(2 * time.Second); n != 1 {
		t.Fatalf("enquire_link answered on %d sessions, want 1", n)
	}
	srv.OnSubmit(nil)
	srv.Release()
}

func TestEnquireLinkSentWhenIdle(t *testing.T) {
	t.Parallel()
	srv, _, _ := newPair(t, "enquire=20ms", nil)
	if !srv.Wait(5*time.Second, func() bool { return srv.Counters().EnquireLinks >= 2 }) {
		t.Fatalf("counters %+v, want enquire_links", srv.Counters())
	}
	if n := srv.Counters().Binds; n != 1 {
		t.Fatalf("%d binds: answered enquire_links must keep the session", n)
	}
}

func TestDeadLinkReconnects(t *testing.T) {
	t.Parallel()
	srv, c, _ := newPair(t, "enquire=20ms&timeout=60ms", nil)
	srv.Silence(true)
	if !srv.Wait(5*time.Second, func() bool { return srv.Counters().Binds >= 2 }) {
		t.Fatalf("counters %+v, want a rebind after the unanswered enquire_link", srv.Counters())
	}
	srv.Silence(false)
	waitReady(t, c)
	if c.Stats().Reconnects < 1 {
		t.Fatalf("stats %+v", c.Stats())
	}
}

func TestSMSCUnbindIsAnsweredAndTheClientRebinds(t *testing.T) {
	t.Parallel()
	srv, c, _ := newPair(t, "", nil)
	if n := srv.Unbind(2 * time.Second); n != 1 {
		t.Fatalf("%d unbind_resp, want 1", n)
	}
	if !srv.Wait(5*time.Second, func() bool { return srv.Counters().Binds == 2 }) {
		t.Fatalf("counters %+v, want a rebind", srv.Counters())
	}
	waitReady(t, c)
	if _, err := c.Send(context.Background(), sms("x")); err != nil {
		t.Fatal(err)
	}
}

func TestGarbageClosesTheSessionOnly(t *testing.T) {
	t.Parallel()
	srv, c, _ := newPair(t, "", nil)
	srv.SendRaw([]byte{0xFF, 0xFF, 0xFF, 0xFF, 'g', 'a', 'r', 'b', 'a', 'g', 'e', '!', 0, 0, 0, 0})
	if !srv.Wait(5*time.Second, func() bool { return srv.Counters().Binds == 2 }) {
		t.Fatalf("counters %+v, want a rebind after garbage", srv.Counters())
	}
	waitReady(t, c)
	if _, err := c.Send(context.Background(), sms("x")); err != nil {
		t.Fatal(err)
	}
}

func TestMalformedRequestGetsGenericNackAndKeepsTheSession(t *testing.T) {
	t.Parallel()
	srv, c, _ := newPair(t, "", nil)
	// A deliver_sm whose sm_length runs past the end, and an unknown command.
	srv.SendRaw([]byte{0, 0, 0, 0x13, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 7, 0, 1, 1})
	srv.SendRaw([]byte{0, 0, 0, 0x10, 0, 0, 0x07, 0x77, 0, 0, 0, 0, 0, 0, 0, 8})
	if !srv.Wait(5*time.Second, func() bool { return srv.Counters().GenericNacks == 2 }) {
		t.Fatalf("counters %+v, want 2 generic_nack", srv.Counters())
	}
	if _, err := c.Send(context.Background(), sms("x")); err != nil {
		t.Fatal(err)
	}
	if n := srv.Counters().Binds; n != 1 {
		t.Fatalf("%d binds, want the session kept", n)
	}
}

func TestCloseWaitsForOutstandingThenUnbinds(t *testing.T) {
	t.Parallel()
	srv, c, _ := newPair(t, "window=3", nil)
	srv.OnSubmit(func(smpptest.Submit) smpptest.Reply { return smpptest.Reply{Withhold: true} })
	errs := make(chan error, 2)
	for range 2 {
		go func() { _, err := c.Send(context.Background(), sms("x")); errs <- err }()
	}
	srv.WaitSubmits(t, 2, 5*time.Second)
	closed := make(chan error, 1)
	go func() { closed <- c.Close(context.Background()) }()
	waitFor(t, "Close to stop new submits", func() bool { return c.Ready() != nil })
	_, err := c.Send(context.Background(), sms("late"))
	if se := sendErr(t, err); se.Kind != verifyd.SendTemporary {
		t.Fatalf("send after Close: kind %v", se.Kind)
	}
	if n := srv.Counters().Unbinds; n != 0 {
		t.Fatal("unbound with responses outstanding")
	}
	srv.Release()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("outstanding submit failed: %v", err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if got := srv.Counters(); got.Unbinds != 1 || got.Binds != 1 || srv.Count() != 2 {
		t.Fatalf("counters %+v, %d submits", got, srv.Count())
	}
}

func TestCloseGivesUpOnUnansweredRequests(t *testing.T) {
	t.Parallel()
	srv, c, _ := newPair(t, "", func(cfg *smpp.Config) { cfg.UnbindWait = 30 * time.Millisecond })
	srv.OnSubmit(func(smpptest.Submit) smpptest.Reply { return smpptest.Reply{Withhold: true} })
	errs := make(chan error, 1)
	go func() { _, err := c.Send(context.Background(), sms("x")); errs <- err }()
	srv.WaitSubmits(t, 1, 5*time.Second)
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if se := sendErr(t, <-errs); se.Kind != verifyd.SendTemporary {
		t.Fatalf("kind %v", se.Kind)
	}
	if n := srv.Counters().Unbinds; n != 1 {
		t.Fatalf("%d unbinds, want 1", n)
	}
}

func TestWrongPasswordIsRefusedAndRetriedWithBackoff(t *testing.T) {
	t.Parallel()
	srv := smpptest.NewServer(t, smpptest.Options{SystemID: "verifyd", Password: "secret1"})
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := startClient(t, testConfig(t, srv.URL("verifyd", "wrong99", "")), nil, log)
	if !srv.Wait(5*time.Second, func() bool { return srv.Counters().BindRefusals >= 3 }) {
		t.Fatalf("counters %+v, want repeated bind attempts", srv.Counters())
	}
	err := c.Ready()
	var be *smpp.BindError
	if !errors.As(err, &be) || be.Status != smpp.StatusInvPaswd {
		t.Fatalf("Ready() = %v, want a BindError ESME_RINVPASWD", err)
	}
	if st := c.Stats(); st.Reconnects < 2 || st.BindsUp != 0 {
		t.Fatalf("stats %+v", st)
	}
	if strings.Contains(err.Error(), "wrong99") || strings.Contains(logs.String(), "wrong99") {
		t.Fatal("the password appears in an error or a log line")
	}
	if !strings.Contains(logs.String(), "ESME_RINVPASWD") {
		t.Fatalf("the refusal is not logged:\n%s", logs.String())
	}
}

func TestLogsNeverShowPasswordTextOrNumber(t *testing.T) {
	t.Parallel()
	srv := smpptest.NewServer(t, smpptest.Options{SystemID: "verifyd", Password: "pw0rd77"})
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := testConfig(t, srv.URL("verifyd", "pw0rd77", "enquire=10ms"))
	rec := newRecorder()
	c := startClient(t, cfg, rec, log)
	waitReady(t, c)
	log.Info("client config", "config", cfg)
	m := &verifyd.SMS{To: "447700900123", From: "Brand", Text: "Your code is 918273"}
	ids, err := c.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	srv.SendReceipt(smpptest.Receipt{ID: ids[0], Stat: "UNDELIV", Text: "Your code is 918273"})
	srv.SendReceipt(smpptest.Receipt{Stat: "DELIVRD", Text: "Your code is 918273"}) // no id
	srv.SendRaw([]byte{0, 0, 0, 0x13, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 7, 0, 1, 1})
	srv.Unbind(time.Second)
	waitReady(t, c)
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, secret := range []string{"pw0rd77", "918273", "447700900123"} {
		if strings.Contains(out, secret) {
			t.Errorf("log shows %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "xxxxx") {
		t.Errorf("the config was not logged redacted:\n%s", out)
	}
}

func TestTransmitterAndReceiverPair(t *testing.T) {
	t.Parallel()
	srv, c, rec := newPair(t, "mode=txrx", nil)
	waitFor(t, "both binds", func() bool { return c.Stats().BindsUp == 2 })
	ids, err := c.Send(context.Background(), sms("x"))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := srv.SendReceipt(smpptest.Receipt{ID: ids[0], Stat: "DELIVRD"}); err != nil || st != smpp.StatusOK {
		t.Fatalf("receipt over the receiver: %v %v", st, err)
	}
	if got := rec.all(); len(got) != 1 || got[0].CarrierID != ids[0] {
		t.Fatalf("recorded %+v", got)
	}
	if st := c.Stats(); st.Binds != 2 || st.Window != 50 {
		t.Fatalf("stats %+v: one transmitter window, two binds", st)
	}
}

func TestTLSVerifiesTheCertificate(t *testing.T) {
	t.Parallel()
	caPEM, cert := testCertificate(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := smpptest.NewServer(t, smpptest.Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})

	t.Run("OKWithConfiguredCA", func(t *testing.T) {
		t.Parallel()
		c := startClient(t, testConfig(t, srv.URL("a", "b", "ca="+caFile)), nil, nil)
		waitReady(t, c)
		if _, err := c.Send(context.Background(), sms("x")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrUnknownAuthorityWithSystemRoots", func(t *testing.T) {
		t.Parallel()
		c := startClient(t, testConfig(t, srv.URL("a", "b", "tls=1")), nil, nil)
		waitFor(t, "a failed handshake", func() bool { return c.Stats().Reconnects >= 1 })
		var uae x509.UnknownAuthorityError
		if err := c.Ready(); !errors.As(err, &uae) {
			t.Fatalf("Ready() = %v, want an unknown authority error", err)
		}
	})
}

// testCertificate makes a CA and a certificate for 127.0.0.1 signed by it.
func testCertificate(t testing.TB) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smpptest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "smpptest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return caPEM, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestCloseDuringBindUnbindsTheNewSession(t *testing.T) {
	t.Parallel()
	srv := smpptest.NewServer(t, smpptest.Options{})
	c := smpp.NewClient(testConfig(t, srv.URL("a", "b", "")), nil, nil)
	c.Start(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Whether Close lands before, during or after the bind, it must end
	// with no session left open.
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if !srv.Wait(5*time.Second, func() bool { return srv.Counters().Sessions == 0 }) {
		t.Fatalf("counters %+v, want every session closed", srv.Counters())
	}
	if c.Ready() == nil {
		t.Fatal("Ready after Close")
	}
}

// alert_notification has no response (SMPP.md §2): the client sends
// nothing back, not even a generic_nack, and keeps the session.
func TestAlertNotificationIsNotAnswered(t *testing.T) {
	t.Parallel()
	srv, c, _ := newPair(t, "", nil)
	alert := []byte{0, 0, 0, 0x1E, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0, 0, 0, 3,
		1, 1, '4', '4', '7', 0, 5, 0, 'v', 'e', 'r', 'i', 'f', 0}
	srv.SendRaw(alert)
	// The client reads in order: once this enquire_link is answered, the
	// alert has been handled.
	if n := srv.EnquireLink(5 * time.Second); n != 1 {
		t.Fatalf("%d enquire_link answered, want 1", n)
	}
	if n := srv.Counters().GenericNacks; n != 0 {
		t.Fatalf("%d generic_nack, want none", n)
	}
	if _, err := c.Send(context.Background(), sms("x")); err != nil {
		t.Fatal(err)
	}
}
