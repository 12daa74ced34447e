package smpptest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptDir finds the node SMSC's folder from this file's place in the
// source tree, so tests of any package (cmd/verifyd's end-to-end tests
// among them) can start it.
func scriptDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "nodesmsc")
}

// Node is testdata/nodesmsc/server.js, an SMSC on the npm package smpp
// 0.5.1 (node-smpp): a peer that shares no code with this package, run as a
// child process and driven over its stdin/stdout.
type Node struct {
	Port  int
	stdin io.WriteCloser

	mu      sync.Mutex
	events  []NodeEvent
	changed chan struct{}
}

// NodeEvent is one line the script printed.
type NodeEvent struct {
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

// StartNode installs the script's dependencies when they are missing and
// starts it. Node and npm are required: without them the test fails, since
// CI must prove the client against this peer.
func StartNode(t testing.TB, systemID, password string, env ...string) *Node {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required for the node-smpp peer test (install Node.js 20 and npm): %v", err)
	}
	dir := scriptDir()
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
	cmd.Env = append(append(os.Environ(), "PORT=0", "SYSTEM_ID="+systemID, "PASSWORD="+password), env...)
	cmd.Stderr = &logWriter{t: t}
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
	n := &Node{stdin: stdin, changed: make(chan struct{})}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev NodeEvent
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
	ev := n.Wait(t, 0, func(e NodeEvent) bool { return e.Event == "listening" })
	n.Port = ev.Port
	return n
}

type logWriter struct{ t testing.TB }

func (w *logWriter) Write(p []byte) (int, error) {
	w.t.Logf("node: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// URL is the smpp:// address of the node SMSC for these credentials.
func (n *Node) URL(systemID, password, query string) string {
	u := fmt.Sprintf("smpp://%s:%s@127.0.0.1:%d", systemID, password, n.Port)
	if query != "" {
		u += "?" + query
	}
	return u
}

// Mark returns the number of events so far, to wait for later ones only.
func (n *Node) Mark() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.events)
}

// Wait returns the first event from index since on that matches, waiting up
// to 10 seconds for it.
func (n *Node) Wait(t testing.TB, since int, match func(NodeEvent) bool) NodeEvent {
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
			return NodeEvent{}
		}
	}
}

// Count returns how many events from since on match.
func (n *Node) Count(since int, match func(NodeEvent) bool) int {
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

// Command writes one JSON command to the script (see server.js).
func (n *Node) Command(t testing.TB, cmd map[string]string) {
	t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := n.stdin.Write(append(b, '\n')); err != nil {
		t.Fatalf("node SMSC command: %v", err)
	}
}

// Events returns a copy of the events from index since on.
func (n *Node) Events(since int) []NodeEvent {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]NodeEvent(nil), n.events[min(since, len(n.events)):]...)
}
