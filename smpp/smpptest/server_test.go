package smpptest

import (
	"bufio"
	"net"
	"slices"
	"testing"
	"time"

	"verifyd/smpp"
)

func TestReassembleJoinsPartsInOrderOnceComplete(t *testing.T) {
	t.Parallel()
	subs := []Submit{
		{Session: 1, Ref: 7, Total: 2, Part: 2, Text: "world"},
		{Session: 1, Text: "single"},
		{Session: 2, Ref: 7, Total: 2, Part: 1, Text: "other session"},
		{Session: 1, Ref: 7, Total: 2, Part: 1, Text: "hello "},
		{Session: 1, Ref: 9, Total: 3, Part: 1, Text: "incomplete"},
	}
	got := Reassemble(subs)
	if want := []string{"single", "hello world"}; !slices.Equal(got, want) {
		t.Fatalf("Reassemble = %q, want %q", got, want)
	}
}

// A receiver bind may not submit (SMPP.md §8): the fake refuses it as an
// SMSC does, so a client that sends over its receiver fails the test
// instead of passing it.
func TestSubmitOverAReceiverIsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		bind smpp.CommandID
		want smpp.Status
	}{
		{smpp.BindReceiver, smpp.StatusInvBndSts},
		{smpp.BindTransmitter, smpp.StatusOK},
		{smpp.BindTransceiver, smpp.StatusOK},
	} {
		t.Run(tc.bind.String(), func(t *testing.T) {
			t.Parallel()
			s := NewServer(t, Options{})
			nc, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			r := bufio.NewReader(nc)
			exchange := func(p *smpp.PDU) *smpp.PDU {
				t.Helper()
				b, err := p.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := nc.Write(b); err != nil {
					t.Fatal(err)
				}
				nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				frame, err := smpp.ReadFrame(r, nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := smpp.Decode(frame)
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}
			if resp := exchange(&smpp.PDU{ID: tc.bind, Seq: 1, SystemID: "a", InterfaceVersion: smpp.InterfaceVersion}); resp.Status != smpp.StatusOK {
				t.Fatalf("bind answered %s", resp.Status)
			}
			resp := exchange(&smpp.PDU{ID: smpp.SubmitSM, Seq: 2, Dest: smpp.Address{TON: 1, NPI: 1, Addr: "447700900123"},
				ShortMessage: []byte("x")})
			if resp.ID != smpp.SubmitSMResp || resp.Seq != 2 || resp.Status != tc.want {
				t.Fatalf("submit_sm answered %s %s, want %s", resp.ID, resp.Status, tc.want)
			}
		})
	}
}
