package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests in this file run verifyd as a real process, the way an operator
// does, to check what only a process can show: signals and crashes.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds verifyd once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "verifyd-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "verifyd")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a verifyd serve process.
type proc struct {
	cmd    *exec.Cmd
	url    string
	exited chan error
	logs   *syncBuffer // everything it wrote to stderr
}

// startProc starts `verifyd serve` with args and waits for its start-up
// line. Extra environment variables come in env.
func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, exited: make(chan error, 1), logs: &syncBuffer{}}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	urls := make(chan string, 1)
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.logs.Write(append(sc.Bytes(), '\n'))
			var line struct{ Msg, URL string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "verifyd listening" {
				urls <- line.URL
			}
		}
	}()
	banner := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(stdout)
		banner <- string(b)
	}()
	go func() {
		<-banner
		<-logged
		p.exited <- cmd.Wait()
	}()
	select {
	case p.url = <-urls:
	case err := <-p.exited:
		p.exited <- err
		t.Fatalf("verifyd exited at start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("verifyd did not start")
	}
	return p
}

// devCredentials reads the dev account kept beside the database.
func devCredentials(t *testing.T, db string) (string, string) {
	t.Helper()
	b, err := os.ReadFile(db + ".dev-account")
	if err != nil {
		t.Fatal(err)
	}
	user, secret, _ := strings.Cut(strings.TrimSpace(string(b)), ":")
	return user, secret
}

// load creates verifications from workers goroutines until stop closes,
// and returns the request ids that were answered 202.
func load(t *testing.T, url, user, secret string, workers int, stop <-chan struct{}) []string {
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"to": "4479790%02d%03d", "from": "Test"}`, w, i%1000)
				req, _ := http.NewRequest("POST", url+"/webapi/verify", strings.NewReader(body))
				req.SetBasicAuth(user, secret)
				resp, err := client.Do(req)
				if err != nil {
					continue // the server is going away: not answered, so not promised
				}
				var v struct{ RequestID string }
				json.NewDecoder(resp.Body).Decode(&v)
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					mu.Lock()
					ids = append(ids, v.RequestID)
					mu.Unlock()
				} else if resp.StatusCode != http.StatusServiceUnavailable {
					t.Errorf("create answered %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	return ids
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// devProc starts `verifyd serve --dev` on a new SQLite database, with the
// dev account's send limits off, and returns the database's path and the
// account's credentials.
func devProc(t *testing.T, args ...string) (p *proc, db, user, secret string) {
	t.Helper()
	db = filepath.Join(t.TempDir(), "verifyd.db")
	p = startProc(t, nil, append([]string{"--dev", "--db", "sqlite:" + db}, args...)...)
	user, secret = devCredentials(t, db)
	if _, err := cli(t, "", "accounts", "set", user, "limits=off", "--db", "sqlite:"+db); err != nil {
		t.Fatal(err)
	}
	return p, db, user, secret
}

// signalUnderLoad loads p from 8 clients, sends sig half a second in, waits
// for the process to end (with status 0 unless sig is SIGKILL), and returns
// the request ids it answered 202.
func signalUnderLoad(t *testing.T, p *proc, user, secret string, sig os.Signal) []string {
	t.Helper()
	stop := make(chan struct{})
	result := make(chan []string, 1)
	go func() { result <- load(t, p.url, user, secret, 8, stop) }()
	time.Sleep(500 * time.Millisecond)
	p.cmd.Process.Signal(sig)
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil && sig != os.Kill {
			t.Fatalf("verifyd exited with %v after %v, want status 0", err, sig)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("verifyd did not stop within 30 s of %v", sig)
	}
	close(stop)
	ids := <-result
	if len(ids) == 0 {
		t.Fatalf("no request was answered before %v", sig)
	}
	return ids
}

// TestSIGTERMUnderLoad stops a loaded server with SIGTERM: it must exit 0,
// and every request it answered 202 must exist and be delivered after a
// restart.
func TestSIGTERMUnderLoad(t *testing.T) {
	t.Parallel()
	p, db, user, secret := devProc(t)
	ids := signalUnderLoad(t, p, user, secret, syscall.SIGTERM)
	checkDelivered(t, db, user, secret, ids)
}

// checkDelivered restarts verifyd on db and waits until every id has been
// handed to the inbox.
func checkDelivered(t *testing.T, db, user, secret string, ids []string) {
	t.Helper()
	// A short lease: the killed process's claims run out quickly.
	p := startProc(t, nil, "--dev", "--db", "sqlite:"+db, "--delivery-lease", "2s")
	deadline := time.Now().Add(60 * time.Second)
	for _, id := range ids {
		if !uuidRE.MatchString(id) {
			t.Fatalf("request id %q is not a v4 UUID", id)
		}
		for {
			req, _ := http.NewRequest("GET", p.url+"/webapi/verify/"+id, nil)
			req.SetBasicAuth(user, secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var rec struct {
				PhoneNumber string
				Delivery    struct{ State string }
			}
			json.NewDecoder(resp.Body).Decode(&rec)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("request %s answered 202 but is lost: GET says %d", id, resp.StatusCode)
			}
			if rec.Delivery.State == "Delivered" {
				checkOneText(t, p.url, rec.PhoneNumber, id)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("request %s: delivery %q, want Delivered", id, rec.Delivery.State)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("%d answered requests, all delivered", len(ids))
}

// checkOneText fails unless every inbox message of request id has the same
// text: delivery is at least once, but never with two different codes.
func checkOneText(t *testing.T, url, number, id string) {
	t.Helper()
	resp, err := http.Get(url + "/inbox/messages?to=" + number)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var msgs []struct{ RequestID, Body string }
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		t.Fatal(err)
	}
	texts := map[string]bool{}
	for _, m := range msgs {
		if m.RequestID == id {
			texts[m.Body] = true
		}
	}
	if len(texts) != 1 {
		t.Fatalf("request %s reached the inbox with %d different texts", id, len(texts))
	}
}

// TestKill9UnderLoad kills a loaded server with SIGKILL: every request it
// answered 202 must survive and be delivered after a restart.
func TestKill9UnderLoad(t *testing.T) {
	t.Parallel()
	p, db, user, secret := devProc(t, "--delivery-lease", "2s")
	ids := signalUnderLoad(t, p, user, secret, os.Kill)
	checkDelivered(t, db, user, secret, ids)
}

// waitLog waits until the process has logged a line with message msg.
func (p *proc) waitLog(t *testing.T, msg string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.logs.String(), `"msg":"`+msg+`"`) {
		if time.Now().After(deadline) {
			t.Fatalf("verifyd never logged %q; its log:\n%s", msg, p.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// holdRequest starts a create on p that stays in flight: its body is
// promised but never sent. It returns once the handler is reading the body
// (the server has answered the Expect: 100-continue), so the request is
// one a graceful stop waits for.
func holdRequest(t *testing.T, p *proc, user, secret string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + secret))
	fmt.Fprintf(conn, "POST /webapi/verify HTTP/1.1\r\nHost: verifyd\r\nAuthorization: Basic %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: 64\r\nExpect: 100-continue\r\n\r\n", auth)
	conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(status, " 100 ") {
		t.Fatalf("holding a request: got %q, %v; want 100 Continue", status, err)
	}
	return conn
}

// TestSecondSignalForcesExit: a graceful stop waits for the requests in
// flight, up to --shutdown-timeout; an operator who will not wait signals
// again (a second Ctrl-C), and verifyd exits at once with status 1 and a
// line that says so, instead of ignoring every signal after the first.
func TestSecondSignalForcesExit(t *testing.T) {
	t.Parallel()
	p, _, user, secret := devProc(t, "--shutdown-timeout", "10m")
	holdRequest(t, p, user, secret)
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLog(t, "verifyd stopping")
	if !strings.Contains(p.logs.String(), `"cause":"terminated signal received"`) {
		t.Errorf("the stop's log line does not say what stopped verifyd:\n%s", p.logs)
	}
	select {
	case err := <-p.exited:
		t.Fatalf("verifyd exited (%v) while a request was still in flight", err)
	default:
	}
	p.cmd.Process.Signal(os.Interrupt)
	var err error
	select {
	case err = <-p.exited:
		p.exited <- err
	case <-time.After(60 * time.Second):
		t.Fatal("verifyd did not exit at a second signal")
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("after a second signal verifyd exited with %v, want status 1", err)
	}
	if !strings.Contains(p.logs.String(), "verifyd: second signal") {
		t.Fatalf("no line says why verifyd stopped at once; its log:\n%s", p.logs)
	}
}

// TestTwoProcessesOneSQLiteFile: two serve processes on one SQLite file (an
// operator's mistake, or a restart that overlaps the old process) are safe:
// SQLite serialises their writers, so every create either one answers is kept
// and delivered, and of concurrent right codes sent to both exactly one
// verifies.
func TestTwoProcessesOneSQLiteFile(t *testing.T) {
	t.Parallel()
	a, db, user, secret := devProc(t, "--delivery-lease", "2s")
	b := startProc(t, nil, "--dev", "--db", "sqlite:"+db, "--delivery-lease", "2s")

	stop := make(chan struct{})
	results := make(chan []string, 2)
	for _, p := range []*proc{a, b} {
		go func() { results <- load(t, p.url, user, secret, 4, stop) }()
	}
	time.Sleep(2 * time.Second)
	close(stop)
	ids := append(<-results, <-results...)
	if len(ids) == 0 {
		t.Fatal("no create was answered")
	}

	s := &server{url: a.url, user: user, secret: secret}
	id := s.send(t, "447979080901")
	code := s.code(t, "447979080901", id)
	var mu sync.Mutex
	verified := 0
	var wg sync.WaitGroup
	for i := range 20 {
		node := &server{url: []*proc{a, b}[i%2].url, user: user, secret: secret}
		wg.Go(func() {
			if st, status := node.validate(t, id, code); st == http.StatusOK && status == "CodeVerified" {
				mu.Lock()
				verified++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if verified != 1 {
		t.Fatalf("%d of 20 right codes sent to both processes verified, want exactly 1", verified)
	}

	for _, p := range []*proc{a, b} {
		p.cmd.Process.Signal(syscall.SIGTERM)
		if err := <-p.exited; err != nil {
			t.Fatalf("verifyd exited with %v after SIGTERM", err)
		}
		p.exited <- nil
	}
	checkDelivered(t, db, user, secret, ids)
}
