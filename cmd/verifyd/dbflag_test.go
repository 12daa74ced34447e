package main

import (
	"strings"
	"testing"
)

// A connection string that pgx cannot read is a bad --db, as a malformed
// URL is: exit 2 with what is wrong with it, before any key is read or host
// dialed, never the password. It used to be a database that failed to open
// (exit 1), with no word on what was wrong.
func TestDBThatDoesNotParseIsABadFlag(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ db, says string }{
		{"postgres://verifyd:s3cret@db.invalid/verifyd?sslmode=bogus", "sslmode is invalid"},
		{"postgres://verifyd:s3cret@db.invalid/verifyd?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem", "/nonexistent/ca.pem"},
		{"postgres://verifyd:s3cret@db.invalid:99999/verifyd", "invalid port"},
		{"postgres://verifyd:s3cret@db.invalid/verifyd?pool_max_conns=many", "pool_max_conns"},
	} {
		for _, args := range [][]string{{"serve", "--addr", "127.0.0.1:0"}, {"migrate"}, {"accounts", "list"}} {
			code, stdout, stderr := runMain(t, nil, append(args, "--db", c.db)...)
			if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 || strings.Contains(stderr, "s3cret") ||
				!strings.HasPrefix(stderr, "verifyd: --db: postgres: the database address is not a valid connection string") ||
				!strings.Contains(stderr, c.says) {
				t.Errorf("verifyd %q --db %s: exit %d, stdout %q, stderr %q; want 2 and one line saying %q, without the password",
					args, c.db, code, stdout, stderr, c.says)
			}
		}
	}
}
