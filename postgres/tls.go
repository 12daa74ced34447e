package postgres

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// tlsRule is what Open does with the TLS of the connections to host, given
// the sslmode the operator wrote ("" when none).
//
// verifyd promises that its outbound TLS verifies certificates. pgx, like
// libpq, defaults to sslmode=prefer: TLS that accepts any certificate, and
// plaintext if the server offers no TLS, so anyone on the path can read and
// change what verifyd stores (sealed texts, code MACs, account digests)
// without a sign. allow and require verify nothing either. So across a
// network, no sslmode means verify-full (upgrade), and allow, prefer and
// require are refused rather than quietly tightened, since the operator
// chose them: the error says what to write. disable, verify-ca and
// verify-full are choices to honour. Loopback and unix sockets never leave
// the machine, so they keep whatever pgx made of the connection string.
func tlsRule(host string, port uint16, sslmode string) (upgrade bool, err error) {
	if network, _ := pgconn.NetworkAddress(host, port); network == "unix" || strings.EqualFold(host, "localhost") {
		return false, nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return false, nil
	}
	switch sslmode {
	case "":
		return true, nil
	case "allow", "prefer", "require":
		return false, fmt.Errorf("postgres: sslmode=%s does not verify the certificate of the database server %s, "+
			"so anyone on the network path could read or change what verifyd stores; write sslmode=verify-full "+
			"(with sslrootcert=FILE when a private CA signs the server's certificate), or sslmode=disable on a "+
			"network you trust", sslmode, host)
	}
	return false, nil
}

// CheckDSN returns the refusal Open would give dsn for a connection string
// pgx cannot read, or for TLS that verifies nothing across a network (see
// tlsRule), from the connection string alone: no host is resolved or
// dialed, so a command line can report it as a bad flag before it starts
// anything.
func CheckDSN(dsn string) error {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return dsnError(dsn, err)
	}
	return verifyTLS(&cfg.ConnConfig.Config, writtenSSLMode(dsn, os.Getenv))
}

// verifyTLS applies tlsRule to every host cfg may connect to: the first
// and each of its Fallbacks (one per host, or two for allow and prefer:
// with TLS and without). A host to upgrade keeps only TLS, verified against
// the system roots (or sslrootcert's) under its own name.
func verifyTLS(cfg *pgconn.Config, sslmode string) error {
	tries := append([]*pgconn.FallbackConfig{{Host: cfg.Host, Port: cfg.Port, TLSConfig: cfg.TLSConfig}}, cfg.Fallbacks...)
	var kept []*pgconn.FallbackConfig
	for i := 0; i < len(tries); {
		// pgx lists a host's tries together.
		j := i + 1
		for j < len(tries) && tries[j].Host == tries[i].Host && tries[j].Port == tries[i].Port {
			j++
		}
		host := tries[i:j]
		i = j
		upgrade, err := tlsRule(host[0].Host, host[0].Port, sslmode)
		if err != nil {
			return err
		}
		if !upgrade {
			kept = append(kept, host...)
			continue
		}
		// The try with TLS carries sslrootcert, sslcert and sslnegotiation.
		tc := &tls.Config{}
		for _, try := range host {
			if try.TLSConfig != nil {
				tc = try.TLSConfig.Clone()
				break
			}
		}
		tc.InsecureSkipVerify, tc.VerifyPeerCertificate, tc.ServerName = false, nil, host[0].Host
		kept = append(kept, &pgconn.FallbackConfig{Host: host[0].Host, Port: host[0].Port, TLSConfig: tc})
	}
	cfg.Host, cfg.Port, cfg.TLSConfig, cfg.Fallbacks = kept[0].Host, kept[0].Port, kept[0].TLSConfig, kept[1:]
	return nil
}

// writtenSSLMode is the sslmode that dsn (which pgx has parsed) writes, or
// else the PGSSLMODE that getenv returns: "" when neither gives one. In a
// URL the last sslmode wins, and ssl=true after it means require, as pgx
// reads them. A service file's sslmode is not seen, so no sslmode is
// assumed: verify-full on a network.
func writtenSSLMode(dsn string, getenv func(string) string) string {
	var mode string
	if rest, ok := strings.CutPrefix(dsn, "postgresql://"); ok || strings.HasPrefix(dsn, "postgres://") {
		if !ok {
			rest = strings.TrimPrefix(dsn, "postgres://")
		}
		// The user info ends at the first '@' before any '/'; the query
		// starts at the first '?' after it.
		if i := strings.IndexAny(rest, "@/"); i >= 0 && rest[i] == '@' {
			rest = rest[i+1:]
		}
		_, query, _ := strings.Cut(rest, "?")
		var ssl string
		sslLast := false
		for pair := range strings.SplitSeq(query, "&") {
			key, value, _ := strings.Cut(pair, "=")
			key, value = uriDecode(key), uriDecode(value)
			switch key {
			case "sslmode":
				mode, sslLast = value, false
			case "ssl":
				ssl, sslLast = value, true
			}
		}
		if sslLast && ssl == "true" {
			mode = "require"
		}
	} else {
		mode = keywordValue(dsn, "sslmode")
	}
	if mode == "" {
		mode = getenv("PGSSLMODE")
	}
	return mode
}

// uriDecode decodes a URL's query key or value as libpq does: percent
// escapes only, surrounding spaces dropped.
func uriDecode(s string) string {
	if v, err := url.PathUnescape(s); err == nil {
		s = v
	}
	return strings.Trim(s, " ")
}

// keywordValue is the last value of key in a key=value connection string:
// values are separated by white space, or quoted with ', with \ escaping
// the next character.
func keywordValue(s, key string) string {
	const space = " \t\n\r\v\f"
	var found string
	s = strings.TrimLeft(s, space)
	for s != "" {
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		rest = strings.TrimLeft(rest, space)
		quoted := strings.HasPrefix(rest, "'")
		if quoted {
			rest = rest[1:]
		}
		var v strings.Builder
		i := 0
		for ; i < len(rest); i++ {
			c := rest[i]
			if quoted && c == '\'' || !quoted && strings.IndexByte(space, c) >= 0 {
				break
			}
			if c == '\\' && i+1 < len(rest) {
				i++
				c = rest[i]
			} else if c == '\\' {
				break
			}
			v.WriteByte(c)
		}
		if quoted && i < len(rest) {
			i++ // the closing quote
		}
		if strings.Trim(k, space) == key {
			found = v.String()
		}
		s = strings.TrimLeft(rest[i:], space)
	}
	return found
}
