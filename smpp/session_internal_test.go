package smpp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// After the SMSC's unbind, unbind_resp is the last PDU the session sends
// (SMPP.md §8: "reply unbind_resp, send nothing more, close"): a receipt's
// deliver_sm_resp or a submit_sm that comes after it is not written, and the
// submit fails as not sent, so it can go over another bind.
func TestNothingFollowsUnbindResp(t *testing.T) {
	t.Parallel()
	c := NewClient(Config{Addr: "127.0.0.1:0", Timeout: 200 * time.Millisecond}, nil, nil)
	ours, theirs := net.Pipe()
	s := newSession(c, roleTRX, 0, ours, bufio.NewReader(ours))
	got := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(theirs); got <- b }()

	if err := s.dispatch(&PDU{ID: Unbind, Seq: 9}); !errors.Is(err, errUnbound) {
		t.Fatalf("dispatch(unbind) = %v, want errUnbound", err)
	}
	s.writePDU(&PDU{ID: DeliverSMResp, Seq: 10})
	_, err := s.request(context.Background(), &PDU{ID: SubmitSM, Dest: Address{TON: 1, NPI: 1, Addr: "447700900123"}}, false, nil)
	if !errors.Is(err, errClosing) {
		t.Errorf("submit after unbind_resp: %v, want errClosing (not sent)", err)
	}
	s.fail(errUnbound)

	want, _ := (&PDU{ID: UnbindResp, Seq: 9}).MarshalBinary()
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("sent %x, want only unbind_resp %x", b, want)
	}
}

// SMPP.md §11.3 and §11.5, octet for octet: an unknown command_id is
// answered with generic_nack ESME_RINVCMDID and a body that does not parse
// with generic_nack ESME_RINVCMDLEN, each echoing the request's sequence
// number; the SMSC's enquire_link is answered with a header-only
// enquire_link_resp; the session stays up throughout.
func TestSMSCRequestsAnsweredOnTheWire(t *testing.T) {
	t.Parallel()
	c := NewClient(Config{Addr: "127.0.0.1:0"}, nil, nil)
	ours, theirs := net.Pipe()
	s := newSession(c, roleTRX, 0, ours, bufio.NewReader(ours))
	ended := make(chan error, 1)
	go func() { ended <- s.run() }()
	defer func() {
		s.fail(errClosing)
		<-ended
	}()
	r := bufio.NewReader(theirs)
	for name, tc := range map[string]struct{ in, want string }{
		"UnknownCommand": {"00000010 00000777 00000000 00000008", "00000010 80000000 00000003 00000008"},
		"BadLength":      {"00000013 00000005 00000000 00000007 000101", "00000010 80000000 00000002 00000007"},
		"EnquireLink":    {"00000010 00000015 00000000 00000009", "00000010 80000015 00000000 00000009"},
	} {
		theirs.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := theirs.Write(unhex(t, tc.in)); err != nil {
			t.Fatalf("%s: write: %v", name, err)
		}
		got, err := ReadFrame(r, nil)
		if err != nil {
			t.Fatalf("%s: read: %v", name, err)
		}
		if want := unhex(t, tc.want); !bytes.Equal(got, want) {
			t.Errorf("%s: answered %x, want %x", name, got, want)
		}
	}
	if !s.alive() {
		t.Fatal("session ended")
	}
}

// A peer that stops reading (a hung SMSC, or one cut off behind a full
// socket buffer) must not hold a submit or the keepalive in a write for
// ever: a write that cannot finish within the response timeout ends the
// session, so the submit fails as unknown, the link is found dead and the
// client binds again. net.Pipe has no buffer: a write blocks at once until
// the other end reads, which here it never does.
func TestWriteToAPeerThatStopsReadingEndsTheSession(t *testing.T) {
	t.Parallel()
	c := NewClient(Config{Addr: "127.0.0.1:0", Timeout: 100 * time.Millisecond, EnquireLink: time.Hour}, nil, nil)
	ours, theirs := net.Pipe()
	defer theirs.Close()
	s := newSession(c, roleTRX, 0, ours, bufio.NewReader(ours))
	ended := make(chan error, 1)
	go func() { ended <- s.run() }()

	sent := make(chan error, 1)
	go func() {
		_, err := s.request(context.Background(), &PDU{ID: SubmitSM, Dest: Address{TON: 1, NPI: 1, Addr: "447700900123"}}, false, nil)
		sent <- err
	}()
	select {
	case err := <-sent:
		if !errors.Is(err, errConnLost) {
			t.Fatalf("submit to a peer that reads nothing: %v, want errConnLost", err)
		}
	case <-time.After(5 * time.Second):
		s.fail(errClosing)
		t.Fatal("submit still writing after 5s, with a 100ms timeout")
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("session still up after its write timed out")
	}
}

// The same for the keepalive: an enquire_link that cannot be written is a
// dead link, not a keepalive stuck in its write with the session kept up.
func TestEnquireLinkToAPeerThatStopsReadingEndsTheSession(t *testing.T) {
	t.Parallel()
	c := NewClient(Config{Addr: "127.0.0.1:0", Timeout: 100 * time.Millisecond, EnquireLink: 20 * time.Millisecond}, nil, nil)
	ours, theirs := net.Pipe()
	defer theirs.Close()
	s := newSession(c, roleTRX, 0, ours, bufio.NewReader(ours))
	ended := make(chan error, 1)
	go func() { ended <- s.run() }()
	select {
	case err := <-ended:
		if !errors.Is(err, errConnLost) {
			t.Fatalf("session ended with %v, want errConnLost", err)
		}
	case <-time.After(5 * time.Second):
		s.fail(errClosing)
		<-ended
		t.Fatal("session still up 5s after an enquire_link it could not write")
	}
}
