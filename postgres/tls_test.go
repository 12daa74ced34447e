package postgres_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"verifyd/postgres"
)

// tries describes each connection attempt of cfg, in order: its host and
// what its TLS checks. "verified" is verify-full: the chain and the host
// name ("+ca" when the roots are sslrootcert's); "chain" is verify-ca;
// "unverified" is TLS that accepts any certificate; "plain" is no TLS.
func tries(cfg *pgconn.Config) []string {
	var out []string
	for _, try := range append([]*pgconn.FallbackConfig{{Host: cfg.Host, Port: cfg.Port, TLSConfig: cfg.TLSConfig}}, cfg.Fallbacks...) {
		out = append(out, try.Host+" "+describeTLS(try.Host, try.TLSConfig))
	}
	return out
}

func describeTLS(host string, tc *tls.Config) string {
	switch {
	case tc == nil:
		return "plain"
	case tc.InsecureSkipVerify && tc.VerifyPeerCertificate != nil:
		return "chain"
	case tc.InsecureSkipVerify:
		return "unverified"
	case tc.ServerName != host:
		return "verified for " + tc.ServerName
	case tc.RootCAs != nil:
		return "verified+ca"
	}
	return "verified"
}

// caFile writes a self-signed CA certificate and returns its path.
func caFile(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "verifyd test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenVerifiesTheServerAcrossANetwork(t *testing.T) {
	t.Parallel()
	ca := caFile(t)
	for _, tc := range []struct {
		name, dsn string
		want      []string
	}{
		// No sslmode across a network: verify-full, no plaintext fallback.
		{"NoSSLModeIsVerifyFull", "postgres://verifyd@db.example.com/verifyd",
			[]string{"db.example.com verified"}},
		{"NoSSLModeIsVerifyFullInKeywordValue", "host=db.example.com user=verifyd dbname=verifyd",
			[]string{"db.example.com verified"}},
		{"NoSSLModeIsVerifyFullOnAnIP", "postgres://verifyd@192.0.2.10/verifyd",
			[]string{"192.0.2.10 verified"}},
		{"NoSSLModeVerifiesEveryHost", "postgres://verifyd@db1.example.com,db2.example.com:5433/verifyd",
			[]string{"db1.example.com verified", "db2.example.com verified"}},
		{"NoSSLModeVerifiesAgainstSSLRootCert", "postgres://verifyd@db.example.com/verifyd?sslrootcert=" + ca,
			[]string{"db.example.com verified+ca"}},
		{"NoSSLModeWithDirectNegotiationIsVerifyFull", "postgres://verifyd@db.example.com/verifyd?sslnegotiation=direct",
			[]string{"db.example.com verified"}},
		{"QuotedSSLModeIsAPasswordNotAMode", `host=db.example.com password='x sslmode=require'`,
			[]string{"db.example.com verified"}},
		// Written choices that verify, or that turn TLS off, stand.
		{"DisableAsWritten", "postgres://verifyd@db.example.com/verifyd?sslmode=disable",
			[]string{"db.example.com plain"}},
		{"VerifyCAAsWritten", "host=db.example.com sslmode=verify-ca",
			[]string{"db.example.com chain"}},
		{"VerifyFullAsWritten", "postgres://verifyd@db.example.com/verifyd?sslmode=verify-full&sslrootcert=" + ca,
			[]string{"db.example.com verified+ca"}},
		{"LastSSLModeWins", "postgres://verifyd@db.example.com/verifyd?sslmode=require&sslmode=verify-full",
			[]string{"db.example.com verified"}},
		// The machine itself: as pgx parses it.
		{"LoopbackAsParsed", "postgres://verifyd@127.0.0.1/verifyd",
			[]string{"127.0.0.1 unverified", "127.0.0.1 plain"}},
		{"LoopbackRangeAsParsed", "postgres://verifyd@127.0.0.2/verifyd?sslmode=require",
			[]string{"127.0.0.2 unverified"}},
		{"LocalhostAsParsed", "postgres://verifyd@localhost/verifyd?sslmode=prefer",
			[]string{"localhost unverified", "localhost plain"}},
		{"IPv6LoopbackAsParsed", "postgres://verifyd@[::1]:5432/verifyd?sslmode=allow",
			[]string{"::1 plain", "::1 unverified"}},
		{"UnixSocketAsParsed", "host=/var/run/postgresql sslmode=prefer",
			[]string{"/var/run/postgresql plain"}},
		{"OnlyTheNetworkHostUpgraded", "postgres://verifyd@127.0.0.1,db.example.com/verifyd",
			[]string{"127.0.0.1 unverified", "127.0.0.1 plain", "db.example.com verified"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := postgres.ParseConfig(tc.dsn)
			if err != nil {
				t.Fatal(err)
			}
			if got := tries(&cfg.ConnConfig.Config); !slices.Equal(got, tc.want) {
				t.Errorf("connection tries %q, want %q", got, tc.want)
			}
			if err := postgres.CheckDSN(tc.dsn); err != nil {
				t.Errorf("CheckDSN: %v, want nil", err)
			}
		})
	}
}

func TestOpenRefusesTLSThatVerifiesNothingAcrossANetwork(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, dsn, mode string
	}{
		{"Prefer", "postgres://verifyd@db.example.com/verifyd?sslmode=prefer", "prefer"},
		{"Allow", "postgres://verifyd@db.example.com/verifyd?sslmode=allow", "allow"},
		{"Require", "postgres://verifyd@db.example.com/verifyd?sslmode=require", "require"},
		{"RequireWithSSLRootCert", "postgres://verifyd@db.example.com/verifyd?sslmode=require&sslrootcert=" + caFile(t), "require"},
		{"SSLTrueIsRequire", "postgresql://verifyd@db.example.com/verifyd?ssl=true", "require"},
		{"RequireInKeywordValue", "host=db.example.com dbname=verifyd sslmode = 'require'", "require"},
		{"LastSSLModeWins", "postgres://verifyd@db.example.com/verifyd?sslmode=verify-full&sslmode=prefer", "prefer"},
		{"AnyHostOnTheNetwork", "postgres://verifyd@127.0.0.1,db.example.com/verifyd?sslmode=require", "require"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := postgres.ParseConfig(tc.dsn)
			if err == nil {
				t.Fatal("accepted, want a refusal")
			}
			// The command line's check, before anything is dialed.
			if cerr := postgres.CheckDSN(tc.dsn); cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("CheckDSN: %v, want %v", cerr, err)
			}
			for _, want := range []string{"sslmode=" + tc.mode + " does not verify", "db.example.com",
				"sslmode=verify-full", "sslrootcert=FILE", "sslmode=disable"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("refusal %q does not say %q", err, want)
				}
			}
		})
	}
	// Open refuses before it dials.
	if _, err := postgres.Open(t.Context(), "postgres://verifyd@db.example.com/verifyd?sslmode=prefer"); err == nil ||
		!strings.Contains(err.Error(), "sslmode=prefer does not verify") {
		t.Fatalf("Open = %v, want the refusal", err)
	}
}

// PGSSLMODE is written too, as pgx reads it. (t.Setenv: not parallel.)
func TestOpenTakesSSLModeFromPGSSLMODE(t *testing.T) {
	const dsn = "postgres://verifyd@db.example.com/verifyd"
	t.Setenv("PGSSLMODE", "disable")
	cfg, err := postgres.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tries(&cfg.ConnConfig.Config), []string{"db.example.com plain"}; !slices.Equal(got, want) {
		t.Errorf("PGSSLMODE=disable: connection tries %q, want %q", got, want)
	}
	t.Setenv("PGSSLMODE", "prefer")
	if _, err := postgres.ParseConfig(dsn); err == nil || !strings.Contains(err.Error(), "sslmode=prefer does not verify") {
		t.Errorf("PGSSLMODE=prefer: %v, want the refusal", err)
	}
}

// A connection string pgx cannot read is refused with pgx's reason, in
// either form, never with the password, and without a dial.
func TestCheckDSNSaysWhyWithoutThePassword(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ dsn, says string }{
		{"postgres://u:s3cret@db.invalid/x?sslmode=bogus", "sslmode is invalid"},
		{"host=db.invalid password=s3cret sslmode=bogus", "sslmode is invalid"},
		{"host=db.invalid password=s3cret port=abc", "invalid port"},
		{"host=db.invalid password='s3cret", "unterminated quoted string"},
		{"postgres://u:s3cret@db.invalid/x?sslcert=/nonexistent.pem", `"sslcert" and "sslkey" are required`},
	} {
		err := postgres.CheckDSN(c.dsn)
		if err == nil || !strings.Contains(err.Error(), c.says) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("CheckDSN(%s): %v; want it to say %q, without the password", c.dsn, err, c.says)
		}
	}
}
