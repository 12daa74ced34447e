package smpp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"verifyd"
	"verifyd/smpp"
)

// nodeSMSC is testdata/nodesmsc/server.js, an SMSC on the npm package smpp
// 0.5.1 (node-smpp): a peer that shares no code with this package, run as a
// child process and driven over its stdin/stdout.
type nodeSMSC struct {
	port  int
	stdin io.WriteCloser

	mu      sync.Mutex
	events  []nodeEvent
	changed chan struct{}
}

type nodeEvent struct {
	Event     string `json:"event"`
	Session   int    `json:"session"`
	Command   string `json:"command"`
	SystemID  string `json:"system_id"`
	Version   int    `json:"interface_version"`
	OK        bool   `json:"ok"`
	Port      int    `json:"port"`
	MessageID string `json:"message_id"`
	Source    struct {
		TON  int    `json:"ton"`
		NPI  int    `json:"npi"`
		Addr string `json:"addr"`
	} `json:"source"`
	Dest struct {
		TON  int    `json:"ton"`
		NPI  int    `json:"npi"`
		Addr string `json:"addr"`
	} `json:"dest"`
	ESMClass           int      `json:"esm_class"`
	DataCoding         int      `json:"data_coding"`
	RegisteredDelivery int      `json:"registered_delivery"`
	ValidityPeriod     string   `json:"validity_period"`
	Text               string   `json:"text"`
	Ref                int      `json:"ref"`
	Total              int      `json:"total"`
	Part               int      `json:"part"`
	MessageIDs         []string `json:"message_ids"`
	Status             int      `json:"status"`
	Error              string   `json:"error"`
}

// startNodeSMSC installs the script's dependencies when they are missing and
// starts it. Node and npm are required: without them the test fails, since
// CI must prove the client against this peer.
func startNodeSMSC(t *testing.T, systemID, password string) *nodeSMSC {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required for the node-smpp peer test (install Node.js 20 and npm): %v", err)
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "nodesmsc"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "smpp", "package.json")); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Fatalf("npm is required to install node-smpp for the peer test: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
		}
	}
	cmd := exec.Command(node, "server.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PORT=0", "SYSTEM_ID="+systemID, "PASSWORD="+password)
	cmd.Stderr = &testWriter{t: t}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node server.js: %v", err)
	}
	n := &nodeSMSC{stdin: stdin, changed: make(chan struct{})}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev nodeEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Errorf("node SMSC printed %q: %v", sc.Text(), err)
				continue
			}
			n.mu.Lock()
			n.events = append(n.events, ev)
			close(n.changed)
			n.changed = make(chan struct{})
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		stdin.Close() // the script exits when its input ends
		done := make(chan error, 1)
		go func() { <-readDone; done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	ev := n.wait(t, 0, func(e nodeEvent) bool { return e.Event == "listening" })
	n.port = ev.Port
	return n
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Logf("node: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (n *nodeSMSC) url(systemID, password, query string) string {
	u := fmt.Sprintf("smpp://%s:%s@127.0.0.1:%d", systemID, password, n.port)
	if query != "" {
		u += "?" + query
	}
	return u
}

// mark returns the number of events so far, to wait for later ones only.
func (n *nodeSMSC) mark() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.events)
}

// wait returns the first event from index since on that matches, waiting up
// to 10 seconds for it.
func (n *nodeSMSC) wait(t testing.TB, since int, match func(nodeEvent) bool) nodeEvent {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		n.mu.Lock()
		for _, ev := range n.events[min(since, len(n.events)):] {
			if match(ev) {
				n.mu.Unlock()
				return ev
			}
		}
		ch := n.changed
		n.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			n.mu.Lock()
			defer n.mu.Unlock()
			t.Fatalf("node SMSC: no matching event; events so far: %+v", n.events)
			return nodeEvent{}
		}
	}
}

// count returns how many events from since on match.
func (n *nodeSMSC) count(since int, match func(nodeEvent) bool) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := 0
	for _, ev := range n.events[min(since, len(n.events)):] {
		if match(ev) {
			k++
		}
	}
	return k
}

func (n *nodeSMSC) command(t testing.TB, cmd map[string]string) {
	t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := n.stdin.Write(append(b, '\n')); err != nil {
		t.Fatalf("node SMSC command: %v", err)
	}
}

func is(name string) func(nodeEvent) bool { return func(e nodeEvent) bool { return e.Event == name } }

// TestNodeSMPPPeer runs the client against node-smpp. Subtests share one
// node process and run in order; each uses its own client.
func TestNodeSMPPPeer(t *testing.T) {
	t.Parallel()
	n := startNodeSMSC(t, "verifyd", "s3cret")

	t.Run("BindSubmitAndReceipts", func(t *testing.T) {
		mark := n.mark()
		rec := newRecorder()
		c := startClient(t, testConfig(t, n.url("verifyd", "s3cret", "")), rec, nil)
		waitReady(t, c)
		bind := n.wait(t, mark, is("bind"))
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
			mark := n.mark()
			ids, err := c.Send(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			sub := n.wait(t, mark, is("submit"))
			if len(ids) != 1 || ids[0] != sub.MessageID {
				t.Fatalf("ids %v, node assigned %s", ids, sub.MessageID)
			}
			if sub.Text != m.Text || sub.DataCoding != 0 || sub.ESMClass != 0 || sub.RegisteredDelivery != 1 ||
				sub.Source.TON != 5 || sub.Source.NPI != 0 || sub.Source.Addr != "Verifyd" ||
				sub.Dest.TON != 1 || sub.Dest.NPI != 1 || sub.Dest.Addr != "447700900123" ||
				len(sub.ValidityPeriod) != 16 || !strings.HasSuffix(sub.ValidityPeriod, "000+") {
				t.Fatalf("submit as node-smpp read it: %+v", sub)
			}
			n.command(t, map[string]string{"cmd": "receipt", "message_id": sub.MessageID, "stat": tc.stat})
			resp := n.wait(t, mark, is("deliver_sm_resp"))
			if resp.Status != 0 {
				t.Fatalf("deliver_sm_resp status %d", resp.Status)
			}
			got := rec.wait(t, i+1)[i]
			if got.CarrierID != ids[0] || got.State != tc.state {
				t.Fatalf("receipt recorded as %+v, want %s for %s", got, tc.state, ids[0])
			}
		}
	})

	t.Run("LongGSMAndUnicodeTextsArriveIntact", func(t *testing.T) {
		c := startClient(t, testConfig(t, n.url("verifyd", "s3cret", "")), nil, nil)
		waitReady(t, c)
		for _, text := range []string{
			strings.Repeat("Your code is 123456. ", 12) + "{€} [~] ^|",
			strings.Repeat("Ваш код подтверждения 123456. ", 4) + "验证码 🙂🎉",
		} {
			mark := n.mark()
			ids, err := c.Send(context.Background(), &verifyd.SMS{RequestID: text[:8], To: "4915112345678", From: "447700900999", Text: text})
			if err != nil {
				t.Fatal(err)
			}
			msg := n.wait(t, mark, is("message"))
			if msg.Text != text {
				t.Fatalf("node-smpp reassembled\n%q\nwant\n%q", msg.Text, text)
			}
			if len(ids) < 2 || strings.Join(ids, ",") != strings.Join(msg.MessageIDs, ",") {
				t.Fatalf("ids %v, node assigned %v", ids, msg.MessageIDs)
			}
			sub := n.wait(t, mark, is("submit"))
			if sub.ESMClass&0x40 == 0 || sub.Total != len(ids) || sub.Source.TON != 1 || sub.Source.NPI != 1 {
				t.Fatalf("part as node-smpp read it: %+v", sub)
			}
		}
	})

	t.Run("WrongPasswordRefusedAndRetried", func(t *testing.T) {
		mark := n.mark()
		c := startClient(t, testConfig(t, n.url("verifyd", "nope", "")), nil, nil)
		refused := func(e nodeEvent) bool { return e.Event == "bind" && !e.OK }
		n.wait(t, mark, refused)
		waitFor(t, "three refused binds", func() bool { return n.count(mark, refused) >= 3 })
		var be *smpp.BindError
		if err := c.Ready(); !errors.As(err, &be) || be.Status != smpp.StatusInvPaswd {
			t.Fatalf("Ready() = %v, want ESME_RINVPASWD", err)
		}
		if st := c.Stats(); st.BindsUp != 0 || st.Reconnects < 2 {
			t.Fatalf("stats %+v", st)
		}
	})

	t.Run("EnquireLinkBothWays", func(t *testing.T) {
		mark := n.mark()
		c := startClient(t, testConfig(t, n.url("verifyd", "s3cret", "enquire=30ms")), nil, nil)
		waitReady(t, c)
		n.wait(t, mark, is("enquire_link")) // the client's, sent when idle
		n.command(t, map[string]string{"cmd": "enquire_link"})
		if resp := n.wait(t, mark, is("enquire_link_resp")); resp.Status != 0 {
			t.Fatalf("enquire_link_resp %+v", resp)
		}
	})

	t.Run("UnbindBothWays", func(t *testing.T) {
		mark := n.mark()
		c := startClient(t, testConfig(t, n.url("verifyd", "s3cret", "")), nil, nil)
		waitReady(t, c)
		n.command(t, map[string]string{"cmd": "unbind"})
		if resp := n.wait(t, mark, is("unbind_resp")); resp.Status != 0 {
			t.Fatalf("unbind_resp %+v", resp)
		}
		ok := func(e nodeEvent) bool { return e.Event == "bind" && e.OK }
		waitFor(t, "a rebind", func() bool { return n.count(mark, ok) >= 2 })
		waitReady(t, c)
		m := n.mark()
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		n.wait(t, m, is("unbind")) // the client's, on Close
		n.wait(t, m, is("close"))
	})
}
