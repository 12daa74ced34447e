package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

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
