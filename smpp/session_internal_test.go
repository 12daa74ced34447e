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
