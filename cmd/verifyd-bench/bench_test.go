package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"verifyd/phone"
)

// TestMain lets the test binary serve as the baseline process, as the
// harness binary does: the harness starts its own executable for it.
func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "baseline" {
		runBaseline(os.Getenv("VERIFYD_BENCH_ADDR"))
		return
	}
	os.Exit(m.Run())
}

// TestQuickCreateProducesTableWithoutErrors runs the harness as a smoke test
// would: -quick, the create workload only. It checks that both targets
// answered every request rightly and that the table came out; it asserts
// nothing about speed, which depends on what else the machine is doing.
func TestQuickCreateProducesTableWithoutErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs verifyd")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := parseFlags([]string{"-quick", "-w", "create", "-d", "2s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	h, err := newHarness(ctx, c, &progress)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	rep, err := h.runAll(ctx)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	targets := map[string]bool{}
	for _, rw := range rep.rows {
		if rw.memoryOnly {
			if rw.mem.hwm == 0 {
				t.Errorf("no memory read for %s", rw.workload)
			}
			continue
		}
		targets[rw.target] = true
		if rw.res.errs > 0 {
			t.Errorf("%s against %s: %d wrong answers, first: %v", rw.workload, rw.target, rw.res.errs, rw.res.samples)
		}
		if rw.res.ops == 0 {
			t.Errorf("%s against %s: no request answered in the window", rw.workload, rw.target)
		}
		if rw.mem.hwm == 0 {
			t.Errorf("%s against %s: no server memory read", rw.workload, rw.target)
		}
	}
	if !targets["baseline"] || !targets["verifyd"] {
		t.Errorf("table has targets %v, want baseline and verifyd", targets)
	}
	var out bytes.Buffer
	rep.print(&out)
	for _, want := range []string{"workload", "RSS peak", "create", "baseline", "verifyd", "RSS < 150 MB"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}

// TestNumbersAreValidAndDistinct checks that the harness's numbers are ones
// verifyd accepts, so that a 400 in a run means a fault, not a bad number.
func TestNumbersAreValidAndDistinct(t *testing.T) {
	var ns numbers
	seen := map[string]bool{}
	for range 1000 {
		n := ns.next()
		if seen[n] {
			t.Fatalf("number %s handed out twice", n)
		}
		seen[n] = true
		if _, err := phone.Parse(n, ""); err != nil {
			t.Fatalf("number %s: %v", n, err)
		}
	}
	for _, n := range []string{"447719999999", "447715000000"} {
		if _, err := phone.Parse(n, ""); err != nil {
			t.Errorf("number %s, within the range, is refused: %v", n, err)
		}
	}
}

// TestClientReadsEveryAnswerShape drives the hand-written client against
// net/http's server with the answers it must parse: fixed length, chunked,
// empty 204, and a server that closes the connection.
func TestClientReadsEveryAnswerShape(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fixed":
			body, _ := io.ReadAll(r.Body)
			w.WriteHeader(202)
			w.Write(append([]byte("got "), body...))
		case "/chunked":
			w.WriteHeader(200)
			for range 3 {
				w.Write(bytes.Repeat([]byte("x"), 5000))
				w.(http.Flusher).Flush()
			}
		case "/empty":
			w.WriteHeader(204)
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		case "/auth":
			u, p, _ := r.BasicAuth()
			w.Write([]byte(u + ":" + p))
		}
	}))
	defer srv.Close()
	c := newClient(strings.TrimPrefix(srv.URL, "http://"), "bench", "s3cret")
	defer c.close()
	for _, tc := range []struct {
		method, path string
		body         []byte
		status       int
		want         string
	}{
		{"POST", "/fixed", []byte(`{"a":1}`), 202, `got {"a":1}`},
		{"GET", "/chunked", nil, 200, strings.Repeat("x", 15000)},
		{"PUT", "/empty", []byte(`{}`), 204, ""},
		{"GET", "/close", nil, 200, "bye"},
		{"GET", "/auth", nil, 200, "bench:s3cret"},
		{"POST", "/fixed", []byte(`again`), 202, "got again"},
	} {
		status, body, err := c.do(tc.method, tc.path, tc.body)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		if status != tc.status || string(body) != tc.want {
			t.Errorf("%s %s = %d %.40q, want %d %.40q", tc.method, tc.path, status, body, tc.status, tc.want)
		}
	}
}

// TestLastDigits checks the code is found in the inbox text wherever it is.
func TestLastDigits(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Your verification code is 123456", "123456"},
		{"123456 is your code", "123456"},
		{"Code 123456, valid 10 minutes", "123456"},
		{"Code 1234567", ""},
		{"no code", ""},
	} {
		if got := lastDigits(tc.in, 6); got != tc.want {
			t.Errorf("lastDigits(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestParseSubmitBench reads the benchmark line the smpp package prints.
func TestParseSubmitBench(t *testing.T) {
	out := "goos: linux\nBenchmarkSubmit-2   \t  339806\t      8787 ns/op\t        50.00 max-in-flight\t    113812 submits/s\t     120 B/op\t       3 allocs/op\nPASS\n"
	rate, inFlight, ok := parseSubmitBench(out)
	if !ok || rate != 113812 || inFlight != 50 {
		t.Errorf("parseSubmitBench = %v, %v, %v; want 113812, 50, true", rate, inFlight, ok)
	}
}

// TestChangesBinary tells the edits that change what is measured from those
// that do not.
func TestChangesBinary(t *testing.T) {
	for _, tc := range []struct {
		status string
		want   bool
	}{
		{"", false},
		{" M sqlite/bench_test.go\n M BENCHMARKS.md\n", false},
		{" M sqlite/bench_test.go\nM  sqlite/writer.go\n", true},
		{" M sqlite/migrations/0001_init.sql\n", true},
		{"R  a_test.go -> a.go\n", true},
		{" M go.sum\n", true},
	} {
		if got := changesBinary(tc.status); got != tc.want {
			t.Errorf("changesBinary(%q) = %v, want %v", tc.status, got, tc.want)
		}
	}
}

// TestCreateAnswerMustNameItsRequest: a 202 with the right status but no
// request id is an error, not throughput.
func TestCreateAnswerMustNameItsRequest(t *testing.T) {
	for body, want := range map[string]bool{
		`{"requestId":"0bd57dc3-580c-4c1d-8aee-2ff79bd8633c","status":"CodeNotVerified"}`: true,
		`{"status":"CodeNotVerified"}`:                                                    false,
		`{"requestId":"","status":"CodeNotVerified"}`:                                     false,
		`{"requestId":"0bd57dc3580c4c1d8aee2ff79bd8633c0000","status":"CodeNotVerified"}`: false,
	} {
		if got := hasRequestID([]byte(body)); got != want {
			t.Errorf("hasRequestID(%s) = %v, want %v", body, got, want)
		}
	}
}

// TestPgDSNMustBeThisMachine: the harness only targets 127.0.0.1.
func TestPgDSNMustBeThisMachine(t *testing.T) {
	for dsn, ok := range map[string]bool{
		"postgres://u:p@127.0.0.1:5432/db":           true,
		"postgres://u:p@localhost/db":                true,
		"postgres://u:p@[::1]:5432/db":               true,
		"host=/tmp/pg dbname=db":                     true,
		"postgres://u:p@10.255.255.1/db":             false,
		"postgres://u:p@db.example.com/db":           false,
		"postgres://u:p@127.0.0.1,db.example.com/db": false,
	} {
		if err := loopbackOnly(dsn); (err == nil) != ok {
			t.Errorf("loopbackOnly(%q) = %v, want ok %v", dsn, err, ok)
		}
	}
}
