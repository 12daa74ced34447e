package smpp_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"verifyd"
	"verifyd/smpp"
	"verifyd/smpp/smpptest"
)

// The node-smpp peer (smpptest.StartNode) is an SMSC that shares no code
// with this package.

func is(name string) func(smpptest.NodeEvent) bool {
	return func(e smpptest.NodeEvent) bool { return e.Event == name }
}

// TestNodeSMPPPeer runs the client against node-smpp. Subtests share one
// node process and run in order; each uses its own client.
func TestNodeSMPPPeer(t *testing.T) {
	t.Parallel()
	n := smpptest.StartNode(t, "verifyd", "s3cret")

	t.Run("BindSubmitAndReceipts", func(t *testing.T) {
		mark := n.Mark()
		rec := newRecorder()
		c := startClient(t, testConfig(t, n.URL("verifyd", "s3cret", "")), rec, nil)
		waitReady(t, c)
		bind := n.Wait(t, mark, is("bind"))
		if bind.Command != "bind_transceiver" || !bind.OK || bind.Version != 0x34 || bind.SystemID != "verifyd" {
			t.Fatalf("bind %+v", bind)
		}
		for i, tc := range []struct {
			stat  string
			state verifyd.DeliveryState
		}{
			{"DELIVRD", verifyd.DeliveryDelivered},
			{"UNDELIV", verifyd.DeliveryUndeliverable},
		} {
			m := &verifyd.SMS{RequestID: "r", To: "447700900123", From: "Verifyd", Text: "Your code is 123456 @ home",
				ValidUntil: time.Now().Add(10 * time.Minute)}
			mark := n.Mark()
			ids, err := c.Send(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			sub := n.Wait(t, mark, is("submit"))
			if len(ids) != 1 || ids[0] != sub.MessageID {
				t.Fatalf("ids %v, node assigned %s", ids, sub.MessageID)
			}
			if sub.Text != m.Text || sub.DataCoding != 0 || sub.ESMClass != 0 || sub.RegisteredDelivery != 1 ||
				sub.Source.TON != 5 || sub.Source.NPI != 0 || sub.Source.Addr != "Verifyd" ||
				sub.Dest.TON != 1 || sub.Dest.NPI != 1 || sub.Dest.Addr != "447700900123" ||
				len(sub.ValidityPeriod) != 16 || !strings.HasSuffix(sub.ValidityPeriod, "000+") {
				t.Fatalf("submit as node-smpp read it: %+v", sub)
			}
			n.Command(t, map[string]string{"cmd": "receipt", "message_id": sub.MessageID, "stat": tc.stat})
			resp := n.Wait(t, mark, is("deliver_sm_resp"))
			if resp.Status != 0 {
				t.Fatalf("deliver_sm_resp status %d", resp.Status)
			}
			got := rec.wait(t, i+1)[i]
			if got.CarrierID != ids[0] || got.State != tc.state {
				t.Fatalf("receipt recorded as %+v, want %s for %s", got, tc.state, ids[0])
			}
		}
	})

	t.Run("ReceiptAsDataSM", func(t *testing.T) {
		rec := newRecorder()
		c := startClient(t, testConfig(t, n.URL("verifyd", "s3cret", "")), rec, nil)
		waitReady(t, c)
		mark := n.Mark()
		ids, err := c.Send(context.Background(), &verifyd.SMS{RequestID: "d", To: "447700900123", From: "Verifyd",
			Text: "Your code is 123456"})
		if err != nil {
			t.Fatal(err)
		}
		n.Wait(t, mark, is("submit"))
		n.Command(t, map[string]string{"cmd": "receipt", "message_id": ids[0], "stat": "DELIVRD", "pdu": "data_sm"})
		// The answer, whichever it is: node-smpp names it by its command.
		answered := func(e smpptest.NodeEvent) bool { return e.MessageID == ids[0] && e.Event != "submit" }
		if resp := n.Wait(t, mark, answered); resp.Event != "data_sm_resp" || resp.Status != 0 {
			t.Fatalf("node-smpp's data_sm receipt answered with %+v, want data_sm_resp status 0", resp)
		}
		if got := rec.wait(t, 1)[0]; got.CarrierID != ids[0] || got.State != verifyd.DeliveryDelivered {
			t.Fatalf("receipt recorded as %+v", got)
		}
	})

	t.Run("LongGSMAndUnicodeTextsArriveIntact", func(t *testing.T) {
		c := startClient(t, testConfig(t, n.URL("verifyd", "s3cret", "")), nil, nil)
		waitReady(t, c)
		for _, text := range []string{
			strings.Repeat("Your code is 123456. ", 12) + "{€} [~] ^|",
			strings.Repeat("Ваш код подтверждения 123456. ", 4) + "验证码 🙂🎉",
			// An ESC pair and a surrogate pair on the 153-septet and
			// 67-unit boundaries: each moves whole to the next part.
			strings.Repeat("a", 152) + "€ code 123456",
			strings.Repeat("ж", 66) + "🙂 code 123456",
		} {
			mark := n.Mark()
			ids, err := c.Send(context.Background(), &verifyd.SMS{RequestID: text[:8], To: "4915112345678", From: "447700900999", Text: text})
			if err != nil {
				t.Fatal(err)
			}
			msg := n.Wait(t, mark, is("message"))
			if msg.Text != text {
				t.Fatalf("node-smpp reassembled\n%q\nwant\n%q", msg.Text, text)
			}
			if len(ids) < 2 || strings.Join(ids, ",") != strings.Join(msg.MessageIDs, ",") {
				t.Fatalf("ids %v, node assigned %v", ids, msg.MessageIDs)
			}
			sub := n.Wait(t, mark, is("submit"))
			if sub.ESMClass&0x40 == 0 || sub.Total != len(ids) || sub.Source.TON != 1 || sub.Source.NPI != 1 {
				t.Fatalf("part as node-smpp read it: %+v", sub)
			}
		}
	})

	t.Run("WrongPasswordRefusedAndRetried", func(t *testing.T) {
		mark := n.Mark()
		c := startClient(t, testConfig(t, n.URL("verifyd", "nope", "")), nil, nil)
		refused := func(e smpptest.NodeEvent) bool { return e.Event == "bind" && !e.OK }
		n.Wait(t, mark, refused)
		waitFor(t, "three refused binds", func() bool { return n.Count(mark, refused) >= 3 })
		var be *smpp.BindError
		if err := c.Ready(); !errors.As(err, &be) || be.Status != smpp.StatusInvPaswd {
			t.Fatalf("Ready() = %v, want ESME_RINVPASWD", err)
		}
		if st := c.Stats(); st.BindsUp != 0 || st.Reconnects < 2 {
			t.Fatalf("stats %+v", st)
		}
	})

	t.Run("EnquireLinkBothWays", func(t *testing.T) {
		mark := n.Mark()
		c := startClient(t, testConfig(t, n.URL("verifyd", "s3cret", "enquire=30ms")), nil, nil)
		waitReady(t, c)
		n.Wait(t, mark, is("enquire_link")) // the client's, sent when idle
		n.Command(t, map[string]string{"cmd": "enquire_link"})
		if resp := n.Wait(t, mark, is("enquire_link_resp")); resp.Status != 0 {
			t.Fatalf("enquire_link_resp %+v", resp)
		}
	})

	t.Run("UnbindBothWays", func(t *testing.T) {
		mark := n.Mark()
		c := startClient(t, testConfig(t, n.URL("verifyd", "s3cret", "")), nil, nil)
		waitReady(t, c)
		n.Command(t, map[string]string{"cmd": "unbind"})
		if resp := n.Wait(t, mark, is("unbind_resp")); resp.Status != 0 {
			t.Fatalf("unbind_resp %+v", resp)
		}
		ok := func(e smpptest.NodeEvent) bool { return e.Event == "bind" && e.OK }
		waitFor(t, "a rebind", func() bool { return n.Count(mark, ok) >= 2 })
		waitReady(t, c)
		m := n.Mark()
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		n.Wait(t, m, is("unbind")) // the client's, on Close
		n.Wait(t, m, is("close"))
	})
}
