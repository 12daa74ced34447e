package main

import (
	"bytes"
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
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runMain runs the command line as main does, with the environment given
// as KEY=VALUE pairs, and returns its exit status, stdout and stderr.
func runMain(t *testing.T, environ []string, args ...string) (int, string, string) {
	t.Helper()
	vars := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	var stdout, stderr syncBuffer
	err := run(context.Background(), args, func(k string) string { return vars[k] }, strings.NewReader(""), &stdout, &stderr)
	code := exitCode(err, &stderr)
	return code, stdout.String(), stderr.String()
}

// The tests in this file hold the command line to the contract's last
// rule: exit status 0, 2 or 1, "with one line on stderr that says what
// failed".

func TestExitCodeOneLine(t *testing.T) {
	t.Parallel()
	// A PostgreSQL dial error lists each address tried on its own line.
	err := errors.New("opening the database: failed to connect to `user=u database=x`:\n\t127.0.0.1:1 (127.0.0.1): dial error: connection refused\n\t[::1]:1 (::1): dial error: connection refused")
	var stderr bytes.Buffer
	if got := exitCode(err, &stderr); got != 1 {
		t.Fatalf("exit %d, want 1", got)
	}
	out := stderr.String()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("stderr is not one line: %q", out)
	}
	if !strings.Contains(out, "127.0.0.1:1 (127.0.0.1): dial error") || !strings.Contains(out, "[::1]:1") {
		t.Fatalf("the folded line lost the cause: %q", out)
	}
}

func TestUsageOutput(t *testing.T) {
	t.Parallel()

	t.Run("ErrBadFlagOneLine", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			environ []string
			args    []string
			want    string // in the one line
		}{
			{nil, []string{"serve", "--bogus"}, "verifyd serve -h"},
			{nil, []string{"serve", "--addr"}, "verifyd serve -h"},
			{nil, []string{"serve", "--shutdown-timeout", "soon"}, "verifyd serve -h"},
			{nil, []string{"keygen", "--bogus"}, "verifyd keygen -h"},
			{nil, []string{"accounts", "list", "--bogus"}, "verifyd accounts -h"},
			{nil, []string{"migrate", "--bogus"}, "verifyd migrate -h"},
			{[]string{"VERIFYD_SHUTDOWN_TIMEOUT=soon"}, []string{"serve"}, "--shutdown-timeout"},
			{nil, nil, "verifyd help"},
			{nil, []string{"nonsense"}, "verifyd help"},
			{nil, []string{"accounts"}, "create, list, disable, enable or set"},
			{nil, []string{"limits"}, "status"},
		} {
			code, stdout, stderr := runMain(t, tc.environ, tc.args...)
			if code != 2 || stdout != "" {
				t.Errorf("verifyd %q: exit %d, stdout %q; want 2 and nothing", tc.args, code, stdout)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "verifyd: ") || !strings.Contains(stderr, tc.want) {
				t.Errorf("verifyd %q: stderr %q, want one line that says %q", tc.args, stderr, tc.want)
			}
		}
	})

	t.Run("HelpOnStdout", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][]string{
			{"serve", "-h"},
			{"serve", "--help"},
			{"accounts", "--help"},
			{"migrate", "-h"},
			{"keygen", "-h"},
			{"limits", "-h"},
			{"send", "--help"},
			{"validate", "-h"},
			{"version", "-h"},
		} {
			code, stdout, stderr := runMain(t, nil, args...)
			if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "usage: verifyd "+args[0]) {
				t.Errorf("verifyd %q: exit %d, stdout %q, stderr %q; want 0 and the usage on stdout", args, code, stdout, stderr)
			}
		}
	})
}

func TestMigrateArguments(t *testing.T) {
	t.Parallel()
	// A database path given without --db must not migrate ./verifyd.db.
	dir := t.TempDir()
	code, stdout, stderr := runMain(t, []string{"VERIFYD_DB=sqlite:" + filepath.Join(dir, "v.db")}, "migrate", filepath.Join(dir, "other.db"))
	if code != 2 || stdout != "" || !strings.Contains(stderr, "--db") {
		t.Fatalf("migrate with an argument: exit %d, stdout %q, stderr %q; want 2 and a line that points at --db", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "v.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("migrate with a bad argument still opened the database: %v", err)
	}
}

func TestServeBadFlagValues(t *testing.T) {
	t.Parallel()
	// No server key is set: a bad value must be reported as the bad flag
	// (exit 2) before the missing key (exit 1), like any other flag.
	db := "sqlite:" + filepath.Join(t.TempDir(), "v.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--sms", "smpp://esme:pw@127.0.0.1:2775?window=many"}, "window"},
		{[]string{"--sms", "smpp://127.0.0.1:2775"}, "system_id"},
		{[]string{"--sms", "smpp://esme:pw@127.0.0.1:abc"}, "--sms: smpp: URL port is not a number"},
		{[]string{"--sms", "smpp://esme:pw@127.0.0.1:99999"}, "--sms: smpp: URL port is not a number"},
		{[]string{"--sms", "http://127.0.0.1:13013/cgi-bin/sendsms"}, "--sms: kannel: URL has no username"},
		{[]string{"--sms", "http://u:Pw9zQ@127.0.0.1:99999/cgi-bin/sendsms"}, "--sms: kannel: URL port is not a number"},
		{[]string{"--sms", "https://u:Pw9zQ@127.0.0.1:13013/cgi-bin/sendsms?receipts=verifyd.example.com"}, "receipts"},
		{[]string{"--sms", "http://u:x@127.0.0.1:13013/cgi-bin/sendsms?password=Pw9zQ"}, `--sms: kannel: URL parameter "password"`},
		{[]string{"--sms", "ftp://u:Pw9zQ@127.0.0.1:13013/"}, "--sms must be"},
		// A URL's scheme is case-insensitive (RFC 3986): an upper-case one
		// names the same sender, and is judged as that sender's URL.
		{[]string{"--sms", "SMPP://esme:pw@127.0.0.1:2775?window=many"}, "window"},
		{[]string{"--sms", "HTTP://127.0.0.1:13013/cgi-bin/sendsms"}, "--sms: kannel: URL has no username"},
		{[]string{"--addr", "nonsense"}, "--addr"},
		{[]string{"--addr", "127.0.0.1:99999"}, "--addr"},
		{[]string{"--addr", "127.0.0.1:18400", "--metrics-addr", "9090"}, "--metrics-addr"},
		// The server's default sender reaches the carrier like a request's
		// from, so the same rules hold.
		{[]string{"--default-from", "ABCDEFGHIJKL"}, "--default-from"},
		{[]string{"--default-from", "Shop!"}, "--default-from"},
		// A lease of nothing was taken as the default minute, a negative
		// stop time as no time at all.
		{[]string{"--delivery-lease", "0"}, "--delivery-lease"},
		{[]string{"--delivery-lease", "-1m"}, "--delivery-lease"},
		{[]string{"--delivery-lease", "10ms"}, "--delivery-lease"},
		{[]string{"--shutdown-timeout", "-5s"}, "--shutdown-timeout"},
	} {
		code, _, stderr := runMain(t, nil, append([]string{"serve", "--db", db}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("serve %q: exit %d, stderr %q; want 2 and a line about %s", tc.args, code, stderr, tc.want)
		}
		if strings.Contains(stderr, "Pw9zQ") {
			t.Errorf("serve %q: stderr %q shows the password", tc.args, stderr)
		}
	}
}

func TestServeTLS(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		certFile, keyFile := selfSigned(t, dir)
		s := launch(t, dir, "--tls-cert", certFile, "--tls-key", keyFile)
		if !strings.HasPrefix(s.url, "https://") {
			t.Fatalf("url %s, want https", s.url)
		}
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(s.url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
			t.Fatalf("GET /healthz over TLS: %d %+v", resp.StatusCode, resp.TLS)
		}
		old := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}}
		defer old.CloseIdleConnections()
		if resp, err := (&http.Client{Transport: old}).Get(s.url + "/healthz"); err == nil {
			resp.Body.Close()
			t.Fatal("a TLS 1.1 client was served")
		}
	})

	t.Run("ErrNoCertificate", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		var stdout, stderr syncBuffer
		e := &env{stdout: &stdout, stderr: &stderr, started: func(string) { t.Error("serve started without its certificate") }}
		err := runWith(context.Background(), []string{"serve", "--dev", "--addr", "127.0.0.1:0",
			"--db", "sqlite:" + filepath.Join(dir, "v.db"),
			"--tls-cert", filepath.Join(dir, "missing.pem"), "--tls-key", filepath.Join(dir, "missing.key")}, e)
		if err == nil || !strings.Contains(err.Error(), "--tls-cert") {
			t.Fatalf("serve with a missing certificate: %v, want a failure that names --tls-cert", err)
		}
		if strings.Contains(stderr.String(), "listening") {
			t.Fatalf("serve announced it was listening before it failed:\n%s", stderr.String())
		}
	})
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestClientErrors(t *testing.T) {
	t.Parallel()
	// An address where nothing listens.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	s := startServer(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string // in the one line
	}{
		{"ErrURL", []string{"send", "--url", "127.0.0.1:8080", "--user", "u", "--password", "p", "--to", "447979080402"}, 2, []string{"--url", "http://"}},
		{"ErrServerDown", []string{"send", "--url", down, "--user", "u", "--password", "p", "--to", "447979080402"}, 1, []string{"connection refused", "--url"}},
		{"ErrCredentials", []string{"send", "--url", s.url, "--user", s.user, "--password", "wrong", "--to", "447979080402"}, 1, []string{"401", "--password"}},
		{"ErrValidateCredentials", []string{"validate", "--url", s.url, "--user", "nobody", "--password", "wrong", "0bd57dc3-580c-4c1d-8aee-2ff79bd8633c", "123456"}, 1, []string{"401", "--user"}},
		{"ErrRefused", []string{"send", "--url", s.url, "--user", s.user, "--password", s.secret, "--to", "12"}, 1, []string{"ToInvalid (to)"}},
	} {
		code, stdout, stderr := runMain(t, nil, tc.args...)
		if code != tc.code || stdout != "" || strings.Count(stderr, "\n") != 1 || strings.Contains(stderr, "verifyd: verifyd:") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %d and one line", tc.name, code, stdout, stderr, tc.code)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr %q does not say %q", tc.name, stderr, w)
			}
		}
	}
}

func TestErrorsSayWhatToDo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "v.db")
	if code, _, stderr := runMain(t, nil, "accounts", "create", "shop", "--db", db); code != 0 {
		t.Fatalf("accounts create: exit %d: %s", code, stderr)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"accounts", "bogus"}, 2, "use create, list, disable, enable or set"},
		{[]string{"accounts", "create"}, 2, "verifyd accounts create NAME"},
		{[]string{"accounts", "disable", "a", "b"}, 2, "verifyd accounts disable NAME"},
		{[]string{"accounts", "list", "x"}, 2, `takes no arguments, got "x"`},
		{[]string{"accounts", "disable", "ghost", "--db", db}, 1, "verifyd accounts list"},
		{[]string{"accounts", "create", "shop", "--db", db}, 1, "choose another name"},
		{[]string{"serve", "--db", db, "--secret-key-file", filepath.Join(dir, "missing.key")}, 1, "verifyd keygen"},
		{[]string{"serve", "--db", db, "--secret-key-file", dir}, 1, "verifyd keygen"},
	} {
		code, _, stderr := runMain(t, nil, tc.args...)
		if code != tc.code || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("verifyd %q: exit %d, stderr %q; want %d and one line that says %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

func TestServeTwoKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "other.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	e := &env{
		getenv: func(k string) string {
			if k == "VERIFYD_SECRET_KEY" {
				return strings.Repeat("cd", 32)
			}
			return ""
		},
		stdout: &stdout, stderr: &stderr,
		started: func(string) { t.Error("serve started with two server keys, one of them ignored") },
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // should it start anyway, stop at once
	err := runWith(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--db", "sqlite:" + filepath.Join(dir, "v.db"), "--secret-key-file", keyFile}, e)
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "VERIFYD_SECRET_KEY") || !strings.Contains(err.Error(), "--secret-key-file") {
		t.Fatalf("serve with VERIFYD_SECRET_KEY and --secret-key-file: %v, want a usage error naming both", err)
	}
}

func TestBadPostgresURL(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"migrate", "--db", "postgres://verifyd:s3cret@[::1/verifyd"},
		{"accounts", "list", "--db", "postgres://verifyd:s3cret@db host/verifyd"},
	} {
		code, _, stderr := runMain(t, nil, args...)
		if code != 2 || !strings.Contains(stderr, "--db") || strings.Contains(stderr, "s3cret") {
			t.Errorf("verifyd %q: exit %d, stderr %q; want 2, a line about --db, and no password", args, code, stderr)
		}
	}
}

// TestDBTLSThatVerifiesNothingIsABadFlag: --db with an sslmode that does
// not verify the server across a network is refused as a bad flag, exit 2,
// by every command that opens the database, from the DSN alone: serve says
// so before the missing server key, and the host (in .invalid, which never
// resolves) is not dialed, which would fail with "check --db" instead.
func TestDBTLSThatVerifiesNothingIsABadFlag(t *testing.T) {
	t.Parallel()
	const db = "postgres://verifyd:s3cret@db.invalid/verifyd?sslmode=require"
	for _, args := range [][]string{
		{"serve", "--addr", "127.0.0.1:0"},
		{"migrate"},
		{"accounts", "list"},
		{"accounts", "create", "shop"},
		{"limits", "status"},
		{"limits", "show", "shop", "447979080215"},
	} {
		code, stdout, stderr := runMain(t, nil, append(args, "--db", db)...)
		if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 || strings.Contains(stderr, "s3cret") ||
			!strings.HasPrefix(stderr, "verifyd: --db: postgres: sslmode=require does not verify the certificate of the database server db.invalid") ||
			!strings.Contains(stderr, "write sslmode=verify-full") {
			t.Errorf("verifyd %q: exit %d, stdout %q, stderr %q; want 2 and one line that says --db's sslmode=require verifies nothing and what to write, without the password",
				args, code, stdout, stderr)
		}
	}
}

func TestPasswordStdinOnlyCreate(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + filepath.Join(t.TempDir(), "v.db")
	if code, _, stderr := runMain(t, nil, "accounts", "create", "shop", "--db", db); code != 0 {
		t.Fatalf("accounts create: exit %d: %s", code, stderr)
	}
	for _, args := range [][]string{
		{"accounts", "enable", "shop", "--password-stdin", "--db", db},
		{"accounts", "list", "--password-stdin", "--db", db},
		{"accounts", "set", "shop", "limits=off", "--password-stdin", "--db", db},
	} {
		code, stdout, stderr := runMain(t, nil, args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, "--password-stdin") {
			t.Errorf("verifyd %q: exit %d, stdout %q, stderr %q; want 2 and a line about --password-stdin", args, code, stdout, stderr)
		}
	}
}

func TestSQLiteDBNotAPath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, db := range []string{
		"sqlite:" + filepath.Join(dir, "v.db") + "?mode=ro",
		"sqlite::memory:",
		"sqlite:file:" + filepath.Join(dir, "v.db"),
	} {
		code, _, stderr := runMain(t, nil, "migrate", "--db", db)
		if code != 2 || !strings.Contains(stderr, "--db") {
			t.Errorf("migrate --db %s: exit %d, stderr %q; want 2 and a line about --db", db, code, stderr)
		}
	}
}

func TestOpenErrorsSayWhatToCheck(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		db   string
		want string
	}{
		{"sqlite:" + filepath.Join(t.TempDir(), "no", "such", "dir", "v.db"), "does not exist"},
		{"postgres://verifyd:pw@" + closed + "/verifyd?sslmode=disable", "check --db"},
		// A directory no one may create files in (even root, on Linux):
		// the driver says only "unable to open database file".
		{"sqlite:/sys/verifyd.db", "cannot create files in /sys"},
	} {
		code, _, stderr := runMain(t, nil, "migrate", "--db", tc.db)
		if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("migrate --db %s: exit %d, stderr %q; want 1 and one line that says %q", tc.db, code, stderr, tc.want)
		}
	}
}

func TestServeAddressTaken(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, flag := range []string{"--addr", "--metrics-addr"} {
		args := []string{"serve", "--dev", "--db", "sqlite:" + filepath.Join(t.TempDir(), "v.db"), "--addr", "127.0.0.1:0"}
		args = append(args, flag, ln.Addr().String())
		code, _, stderr := runMain(t, nil, args...)
		if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, flag+":") || !strings.Contains(stderr, "choose another address") {
			t.Errorf("serve %s on a taken address: exit %d, stderr %q; want 1 and one line that names %s and says what to do", flag, code, stderr, flag)
		}
	}
}

// TestHTTPServersHaveEveryTimeout: both listeners of serve (the API and
// --metrics-addr) are built by newHTTPServer, whose every deadline is set;
// the metrics listener once had only a header timeout, so an idle or
// non-reading client held its connection for ever.
func TestHTTPServersHaveEveryTimeout(t *testing.T) {
	t.Parallel()
	s := newHTTPServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	for name, d := range map[string]time.Duration{
		"ReadHeaderTimeout": s.ReadHeaderTimeout, "ReadTimeout": s.ReadTimeout,
		"WriteTimeout": s.WriteTimeout, "IdleTimeout": s.IdleTimeout,
	} {
		if d <= 0 {
			t.Errorf("%s is %v", name, d)
		}
	}
	if s.MaxHeaderBytes <= 0 || s.ErrorLog == nil {
		t.Errorf("MaxHeaderBytes %d, ErrorLog %v", s.MaxHeaderBytes, s.ErrorLog)
	}
	src, err := os.ReadFile("serve.go")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(src), "nethttp.Server{"); n != 1 {
		t.Errorf("serve.go builds %d http.Servers by hand; every listener must come from newHTTPServer", n)
	}
}

// TestServeSMPPCAFileCheckedAtStart: the SMSC's CA file (--sms ...?ca=FILE)
// is read at start, like --tls-cert, so that a missing or empty one fails
// the start with one line instead of a server that runs but never binds.
func TestServeSMPPCAFileCheckedAtStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ca := range []string{filepath.Join(dir, "missing.pem"), notPEM} {
		var stdout, stderr syncBuffer
		ctx, cancel := context.WithCancel(context.Background())
		e := &env{stdout: &stdout, stderr: &stderr, started: func(string) {
			t.Errorf("serve started with the SMSC's CA file %s, which holds no certificate", ca)
			cancel()
		}}
		err := runWith(ctx, []string{"serve", "--dev", "--addr", "127.0.0.1:0",
			"--db", "sqlite:" + filepath.Join(dir, "v.db"),
			"--sms", "smpps://esme:pw@127.0.0.1:1?ca=" + ca}, e)
		cancel()
		code := exitCode(err, &stderr)
		if code != 1 || !strings.Contains(err.Error(), ca) || !strings.Contains(err.Error(), "--sms") {
			t.Errorf("serve with the CA file %s: exit %d, %v; want 1 and a line that names --sms and the file", ca, code, err)
		}
	}
	// A file that holds a certificate starts (the bind is tried later).
	caFile, _ := selfSigned(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	started := false
	e := &env{stdout: &syncBuffer{}, stderr: &syncBuffer{}, started: func(string) { started = true; cancel() }}
	err := runWith(ctx, []string{"serve", "--dev", "--addr", "127.0.0.1:0", "--db", "sqlite:" + filepath.Join(dir, "v.db"),
		"--sms", "smpps://esme:pw@127.0.0.1:1?ca=" + caFile}, e)
	if err != nil || !started {
		t.Errorf("serve with a CA file that holds a certificate: started %v, %v", started, err)
	}
}

// TestSignalDuringStartUp: a stop asked for while serve is still starting
// (here before it opens the database) is a stop, exit 0, not a failure
// whose line blames the database.
func TestSignalDuringStartUp(t *testing.T) {
	t.Parallel()
	ctx, signal := context.WithCancelCause(context.Background())
	signal(errors.New("terminated signal received"))
	var stdout, stderr syncBuffer
	err := runWith(ctx, []string{"serve", "--dev", "--addr", "127.0.0.1:0",
		"--db", "sqlite:" + filepath.Join(t.TempDir(), "v.db")}, &env{stdout: &stdout, stderr: &stderr})
	if code := exitCode(err, &stderr); code != 0 {
		t.Fatalf("serve stopped by a signal during start-up: exit %d, %v; want 0", code, err)
	}
	if !strings.Contains(stderr.String(), "verifyd stopped during start-up") || !strings.Contains(stderr.String(), "terminated signal received") {
		t.Fatalf("no line says the start-up was stopped by the signal:\n%s", stderr.String())
	}
}

// TestDBErrorsHideThePassword: every form of --db that carries a password
// (the URL's userinfo, a password= parameter, a keyword/value string, quoted
// or not) is quoted in messages without it: stderr goes to the journal.
func TestDBErrorsHideThePassword(t *testing.T) {
	t.Parallel()
	for _, db := range []string{
		"postgres://u:SECRETPW@127.0.0.1:notaport/x",
		"postgres://u@127.0.0.1:notaport/x?password=SECRETPW",
		"postgres://u@127.0.0.1:notaport/x?sslmode=disable&PASSWORD=SECRETPW&x=1",
		"host=127.0.0.1 port=5432 password=SECRETPW sslmode=disable",
		"host=127.0.0.1 password = 'SECRET PW\\' X' user=u",
	} {
		if got := redactDSN(db); strings.Contains(got, "SECRET") || !strings.Contains(got, "xxxxx") {
			t.Errorf("redactDSN(%q) = %q", db, got)
		}
		code, _, stderr := runMain(t, nil, "migrate", "--db", db)
		if code != 2 || strings.Contains(stderr, "SECRET") {
			t.Errorf("migrate --db %q: exit %d, stderr %q; want 2 and no password", db, code, stderr)
		}
	}
}

// TestServeRefusesAnotherServerKey: under another key every stored code's
// MAC fails and every queued text cannot be opened, so serve refuses to
// start on a database written under another key, unless told to take the
// new one; the request made under the old key then no longer verifies.
func TestServeRefusesAnotherServerKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "verifyd.db")
	s := launch(t, dir)
	number := "447123123456"
	id := s.send(t, number)
	code := s.code(t, number, id)
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	// --dev keeps its key beside the database: the operator replaced it.
	if err := os.WriteFile(db+".key", []byte(strings.Repeat("5e", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	err := runWith(ctx, []string{"serve", "--dev", "--addr", "127.0.0.1:0", "--db", "sqlite:" + db}, &env{
		stdout: &stdout, stderr: &stderr,
		started: func(string) { t.Error("serve started under another server key"); cancel() },
	})
	if exitCode(err, &stderr) != 1 || err == nil || !strings.Contains(err.Error(), "server key") ||
		!strings.Contains(err.Error(), "--replace-server-key") {
		t.Fatalf("serve with another key: %v; want exit 1 and a line naming the way out", err)
	}

	s = launch(t, dir, "--replace-server-key")
	if !strings.Contains(s.stderr.String(), "now takes this server key") {
		t.Errorf("no warning on taking the new key:\n%s", s.stderr)
	}
	if status, body := s.validate(t, id, code); status != 200 || !strings.Contains(body, "CodeNotVerified") {
		t.Errorf("the old request's right code under the new key: %d %s, want CodeNotVerified", status, body)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	s = launch(t, dir) // the new key is the database's now
	id = s.send(t, number)
	if status, body := s.validate(t, id, s.code(t, number, id)); status != 200 || !strings.Contains(body, "CodeVerified") {
		t.Errorf("a new request under the new key: %d %s", status, body)
	}
}

// A --url the client cannot use is a bad flag: exit 2, and the line names
// --url, as it does for a URL that is no http URL at all.
func TestClientURLRefused(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"http://dev:secret@127.0.0.1:8080", "http://127.0.0.1:8080?x=1", "http://127.0.0.1:8080/#top", "http://127.0.0.1:8080/?"} {
		for _, args := range [][]string{
			{"send", "--url", u, "--user", "u", "--password", "p", "--to", "447979080402"},
			{"validate", "--url", u, "--user", "u", "--password", "p", "0bd57dc3-580c-4c1d-8aee-2ff79bd8633c", "123456"},
		} {
			code, stdout, stderr := runMain(t, nil, args...)
			if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "--url") ||
				strings.Contains(stderr, "verifyd: verifyd:") || strings.Contains(stderr, "secret") {
				t.Errorf("%s --url %s: exit %d, stdout %q, stderr %q; want 2 and one line about --url", args[0], u, code, stdout, stderr)
			}
		}
	}
}

// A --url that reaches something other than verifyd (a web page answering
// 2xx) fails with one line that says so once, not "verifyd: verifyd:".
func TestClientNotVerifyd(t *testing.T) {
	t.Parallel()
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte("<html>a web page</html>"))
	}))
	defer page.Close()
	code, stdout, stderr := runMain(t, nil, "send", "--url", page.URL, "--user", "u", "--password", "p", "--to", "447979080402")
	if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 || strings.Contains(stderr, "verifyd: verifyd:") ||
		!strings.Contains(stderr, "--url") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and one line that points at --url", code, stdout, stderr)
	}
}

// serve --dev writes its key beside the SQLite database before it opens
// the database: a path it cannot write there says what to check, as the
// database's own open does.
func TestDevKeyErrorsSayWhatToCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		db   string
		want string
	}{
		{"sqlite:" + filepath.Join(t.TempDir(), "no", "such", "dir", "v.db"), "does not exist: create it, or give --db another path"},
		{"sqlite:/sys/verifyd.db", "cannot create files in /sys"},
	} {
		code, _, stderr := runMain(t, nil, "serve", "--dev", "--addr", "127.0.0.1:0", "--db", tc.db)
		if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("serve --dev --db %s: exit %d, stderr %q; want 1 and one line that says %q", tc.db, code, stderr, tc.want)
		}
	}
}

// A send stopped by a signal says so, without the hint for a server that
// is not there: the server was reached, and the user stopped the wait.
func TestClientInterrupted(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(200*time.Millisecond, func() { cancel(errors.New("interrupt signal received")) })
	var stdout, stderr syncBuffer
	err := run(ctx, []string{"send", "--url", hang.URL, "--user", "u", "--password", "p", "--to", "447979080402"},
		func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
	code := exitCode(err, &stderr)
	if code != 1 || strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), "interrupt signal received") ||
		strings.Contains(stderr.String(), "is verifyd serving") {
		t.Errorf("exit %d, stderr %q; want 1 and one line that says the send was interrupted, without asking whether verifyd serves", code, stderr.String())
	}
}
