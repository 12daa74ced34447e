package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the server's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// clock is a settable clock shared by the server and the test.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// server is one `verifyd serve` run inside the test process.
type server struct {
	url            string
	user, secret   string
	dir            string
	clock          *clock
	stdout, stderr *syncBuffer
	stop           func() error
}

// cli runs one verifyd command to completion and returns its stdout.
func cli(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut syncBuffer
	err := runWith(context.Background(), args, &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut})
	return out.String(), err
}

// startServer runs `verifyd serve --dev` on a free port with its database in
// a temp dir, and stops it when the test ends.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	return launch(t, t.TempDir(), args...)
}

// launch runs `verifyd serve --dev` on the database in dir.
func launch(t *testing.T, dir string, args ...string) *server {
	t.Helper()
	s := &server{dir: dir, clock: &clock{}, stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan string, 1)
	done := make(chan error, 1)
	e := &env{
		stdout:  s.stdout,
		stderr:  s.stderr,
		now:     s.clock.Now,
		started: func(url string) { started <- url },
	}
	base := []string{"serve", "--dev", "--addr", "127.0.0.1:0", "--db", "sqlite:" + filepath.Join(dir, "verifyd.db")}
	go func() { done <- runWith(ctx, append(base, args...), e) }()
	select {
	case s.url = <-started:
	case err := <-done:
		cancel()
		t.Fatalf("serve stopped at once: %v\n%s", err, s.stderr)
	}
	var once sync.Once
	var stopErr error
	s.stop = func() error {
		once.Do(func() { cancel(); stopErr = <-done })
		return stopErr
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	m := regexp.MustCompile(`username: (\S+)\s+secret:\s+(\S+)`).FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("no dev credentials in the banner:\n%s", s.stdout)
	}
	s.user, s.secret = m[1], m[2]
	return s
}

type answer struct {
	status int
	body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("answer %d %q is not a JSON object: %v", a.status, a.body, err)
	}
	return m
}

// call sends one API request as the dev account; user "" sends none.
func (s *server) call(t *testing.T, method, path, body string, hdr ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(s.user, s.secret)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Authorization" && hdr[i+1] == "" {
			req.Header.Del("Authorization")
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, b}
}

// send creates a verification for number and returns its request id.
func (s *server) send(t *testing.T, number string) string {
	t.Helper()
	a := s.call(t, "POST", "/webapi/verify", fmt.Sprintf(`{"to": %q, "from": "Test"}`, number))
	if a.status != http.StatusAccepted {
		t.Fatalf("send: %d %s", a.status, a.body)
	}
	return a.json(t)["requestId"].(string)
}

var codeInText = regexp.MustCompile(`\d{4,10}`)

// code reads the code of request id from the dev inbox, waiting for the
// delivery worker to put it there.
func (s *server) code(t *testing.T, number, id string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.url + "/inbox/messages?to=" + number)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []struct{ RequestID, Body string }
		err = json.NewDecoder(resp.Body).Decode(&msgs)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.RequestID == id {
				return codeInText.FindString(m.Body)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("request %s never reached the inbox", id)
	return ""
}

func (s *server) validate(t *testing.T, id, code string) (int, string) {
	t.Helper()
	a := s.call(t, "PUT", "/webapi/verify/"+id+"/validate", fmt.Sprintf(`{"code": %q}`, code))
	if a.status != http.StatusOK {
		return a.status, ""
	}
	return a.status, a.json(t)["status"].(string)
}

// wrong returns a well-formed code that is not code.
func wrong(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func TestServeDev(t *testing.T) {
	t.Parallel()
	s := startServer(t)

	t.Run("WrongCodesLock", func(t *testing.T) {
		id := s.send(t, "447979080101")
		code := s.code(t, "447979080101", id)
		for i := 1; i <= 4; i++ {
			if st, status := s.validate(t, id, wrong(code)); st != 200 || status != "CodeNotVerified" {
				t.Fatalf("wrong code %d: %d %s", i, st, status)
			}
		}
		if st, status := s.validate(t, id, wrong(code)); st != 200 || status != "CodeLocked" {
			t.Fatalf("5th wrong code: %d %s", st, status)
		}
		if st, _ := s.validate(t, id, code); st != 204 {
			t.Fatalf("right code after the lock: %d, want 204", st)
		}
	})

	t.Run("RightCodeOnce", func(t *testing.T) {
		id := s.send(t, "447979080102")
		code := s.code(t, "447979080102", id)
		a := s.call(t, "PUT", "/webapi/verify/"+id+"/validate", `{"code": "`+code+`"}`)
		if a.status != 200 || a.json(t)["status"] != "CodeVerified" || a.json(t)["verified"] == nil {
			t.Fatalf("right code: %d %s", a.status, a.body)
		}
		if st, _ := s.validate(t, id, code); st != 204 {
			t.Fatalf("second validate: %d, want 204", st)
		}
		rec := s.call(t, "GET", "/webapi/verify/"+id, "")
		if rec.status != 200 || rec.json(t)["state"] != "Verified" {
			t.Fatalf("record: %d %s", rec.status, rec.body)
		}
		// The inbox reports its messages delivered. The worker records
		// that in its own commit, just after the message reached the inbox
		// (where the code was read), so it may not be there yet.
		waitDelivery(t, s, id, "Delivered")
	})

	t.Run("ConcurrentRightCodes", func(t *testing.T) {
		id := s.send(t, "447979080103")
		code := s.code(t, "447979080103", id)
		var mu sync.Mutex
		counts := map[string]int{}
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				st, status := s.validate(t, id, code)
				mu.Lock()
				counts[fmt.Sprintf("%d %s", st, status)]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if counts["200 CodeVerified"] != 1 || counts["204 "] != 49 {
			t.Fatalf("answers %v, want exactly one CodeVerified and 49 204s", counts)
		}
	})

	t.Run("SeedExamples", func(t *testing.T) {
		// The C# sample's array body, the PHP sample's path, the jQuery
		// sample's headers.
		a := s.call(t, "POST", "/webapi/verify/sendcode", `[{"from": "Test", "to": "447979080215"}]`)
		if a.status != 202 || a.json(t)["status"] != "CodeNotVerified" || a.json(t)["phoneNumber"] != "447979080215" {
			t.Fatalf("array body on sendcode: %d %s", a.status, a.body)
		}
		a = s.call(t, "POST", "/WebApi/Verify/", `{"from": "Test", "to": "447979080216"}`,
			"Authorization", "", "username", s.user, "password", s.secret)
		if a.status != 202 {
			t.Fatalf("jQuery headers: %d %s", a.status, a.body)
		}
		a = s.call(t, "POST", "/webapi/verify", `{"from": "Test", "to": "4479790802150"}`)
		if a.status != 400 || !strings.Contains(string(a.body), `"property":"to","failureCode":"ToInvalid"`) {
			t.Fatalf("bad number: %d %s", a.status, a.body)
		}
		a = s.call(t, "POST", "/webapi/verify", `{"from": "Test", "to": "447979080215"}`, "Authorization", "")
		if a.status != 401 || string(a.body) != "No authorization header supplied or invalid username or password" {
			t.Fatalf("no credentials: %d %s", a.status, a.body)
		}
	})

	t.Run("MetricsAndOpenAPI", func(t *testing.T) {
		a := s.call(t, "GET", "/metrics", "", "Authorization", "")
		if a.status != 200 || !strings.Contains(string(a.body), `verifyd_verifications_created_total{country="GB",number_status="On"}`) ||
			!strings.Contains(string(a.body), "go_goroutines") {
			t.Fatalf("/metrics: %d\n%.2000s", a.status, a.body)
		}
		a = s.call(t, "GET", "/openapi.json", "", "Authorization", "")
		if a.status != 200 || a.json(t)["openapi"] != "3.1.0" {
			t.Fatalf("/openapi.json: %d %.200s", a.status, a.body)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		id := s.send(t, "447979080104")
		code := s.code(t, "447979080104", id)
		s.clock.Add(10*time.Minute + time.Second)
		if st, status := s.validate(t, id, code); st != 200 || status != "CodeExpired" {
			t.Fatalf("after the validity: %d %s", st, status)
		}
		if st, _ := s.validate(t, id, code); st != 204 {
			t.Fatalf("after CodeExpired: %d, want 204", st)
		}
	})
}

// TestNoCodeOnDiskOrInLogs issues codes through the whole path (create,
// queue, inbox, validate) and then looks for each one in every file the
// server wrote and in everything it logged.
func TestNoCodeOnDiskOrInLogs(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	// Ten-digit codes, so that no timestamp or id matches by chance.
	db := "sqlite:" + filepath.Join(s.dir, "verifyd.db")
	if _, err := cli(t, "", "accounts", "set", "dev", "codeLength=10", "limits=off", "--db", db); err != nil {
		t.Fatal(err)
	}
	s.stop()
	s2 := launch(t, s.dir)
	if s2.user != s.user || s2.secret != s.secret {
		t.Fatalf("a restarted dev server should print the same credentials")
	}

	var codes []string
	for i := range 20 {
		number := fmt.Sprintf("4479790803%02d", i)
		id := s2.send(t, number)
		code := s2.code(t, number, id)
		if len(code) != 10 {
			t.Fatalf("code %q is not 10 digits", code)
		}
		codes = append(codes, code)
		if i%2 == 0 {
			s2.validate(t, id, wrong(code))
			s2.validate(t, id, code)
		}
	}
	if err := s2.stop(); err != nil {
		t.Fatal(err)
	}
	haystacks := map[string]string{"stdout": s2.stdout.String(), "stderr": s2.stderr.String()}
	files, _ := filepath.Glob(filepath.Join(s.dir, "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		haystacks[filepath.Base(f)] = string(b)
	}
	if len(files) < 2 {
		t.Fatalf("expected the database files in %s, found %v", s.dir, files)
	}
	for name, h := range haystacks {
		if strings.Contains(h, "verification code is") {
			t.Errorf("%s holds a message text", name)
		}
		for _, c := range codes {
			if strings.Contains(h, c) {
				t.Errorf("%s holds the code %s", name, c)
			}
		}
	}
}

// TestDevOnAReachableAddressWarns: the dev inbox shows every code without
// a password, so --dev on an address other machines can reach says so.
func TestDevOnAReachableAddressWarns(t *testing.T) {
	t.Parallel()
	const warning = "anyone who reaches it can read every code"
	// The log is written behind the server (logwriter): read it once the
	// server has stopped.
	loop := startServer(t)
	if err := loop.stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(loop.stderr.String(), warning) {
		t.Errorf("warning on loopback:\n%s", loop.stderr)
	}
	all := startServer(t, "--addr", "0.0.0.0:0")
	if err := all.stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(all.stderr.String(), warning) {
		t.Errorf("no warning for --dev on 0.0.0.0:\n%s", all.stderr)
	}
}
