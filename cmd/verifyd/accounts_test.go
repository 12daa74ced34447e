package main

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func isUsageErr(err error) bool {
	var ue usageError
	return errors.As(err, &ue)
}

// newAccount creates the account shop in a fresh database and returns the
// database's --db value.
func newAccount(t *testing.T) string {
	t.Helper()
	db := "sqlite:" + filepath.Join(t.TempDir(), "v.db")
	if _, err := cli(t, "", "accounts", "create", "shop", "--db", db); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestAccountsSetCountries(t *testing.T) {
	t.Parallel()
	db := newAccount(t)
	out, err := cli(t, "", "accounts", "set", "shop", "countries=gbr, US", "--db", db)
	if err != nil || !strings.Contains(out, `"countries":["GBR","US"]`) {
		t.Fatalf("countries=gbr, US: %v %q", err, out)
	}
	// A code that names no country would refuse every number quietly
	// (CountryNotAllowed), or narrow the list to less than meant.
	for _, bad := range []string{"countries=ZZZ", "countries=GBR,XX", "countries=UK", "countries=United Kingdom", "countries=G"} {
		_, err := cli(t, "", "accounts", "set", "shop", bad, "--db", db)
		if !isUsageErr(err) || !strings.Contains(err.Error(), "alpha-3") {
			t.Errorf("set %s: %v, want a usage error naming the allowed forms", bad, err)
		}
	}
	out, err = cli(t, "", "accounts", "list", "--db", db)
	if err != nil || !strings.Contains(out, `"countries":["GBR","US"]`) {
		t.Fatalf("a refused set changed the list: %v %q", err, out)
	}
}

func TestAccountsSetTestNumbersMustBeValid(t *testing.T) {
	t.Parallel()
	db := newAccount(t)
	if out, err := cli(t, "", "accounts", "set", "shop", "testNumbers=+447979081001:code=123456", "--db", db); err != nil ||
		!strings.Contains(out, `"447979081001":{"code":"123456"`) {
		t.Fatalf("a valid test number: %v %q", err, out)
	}
	// 12345678 and 447700900001 are no numbers (create answers ToInvalid);
	// 00447979081001 is one, but create looks test numbers up by
	// 447979081001, so that entry would never match and its requests would
	// reach a carrier.
	for _, bad := range []string{"testNumbers=12345678:code=123456", "testNumbers=00447979081001:code=123456", "testNumbers=447700900001:code=123456"} {
		_, err := cli(t, "", "accounts", "set", "shop", bad, "--db", db)
		if !isUsageErr(err) || !strings.Contains(err.Error(), "international form") {
			t.Errorf("set %s: %v, want a usage error", bad, err)
		}
	}
}

func TestAccountsSetDefaultFromNotReserved(t *testing.T) {
	t.Parallel()
	db := newAccount(t)
	// create sends the default unchecked against the reserved list, so a
	// reserved default would go out under a sender the account may not use.
	if _, err := cli(t, "", "accounts", "set", "shop", "reservedFrom=Bank,Police", "defaultFrom=Shop", "--db", db); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{{"defaultFrom=bank"}, {"reservedFrom=Shop"}, {"defaultFrom=Police", "reservedFrom=Police"}} {
		_, err := cli(t, "", append([]string{"accounts", "set", "shop", "--db", db}, bad...)...)
		if !isUsageErr(err) || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("set %v: %v, want a usage error", bad, err)
		}
	}
	if out, err := cli(t, "", "accounts", "set", "shop", "reservedFrom=", "defaultFrom=Bank", "--db", db); err != nil ||
		!strings.Contains(out, `"defaultFrom":"Bank"`) {
		t.Fatalf("clearing the list frees the name: %v %q", err, out)
	}
}

// TestPasswordStdinStopsAtASignal: Ctrl-C at the password prompt ends
// accounts create, with no account made; it was ignored while the read
// waited for a line.
func TestPasswordStdinStopsAtASignal(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + filepath.Join(t.TempDir(), "v.db")
	pipe, typing := io.Pipe() // a terminal where nothing is typed
	defer typing.Close()
	stdin := &promptReader{r: pipe, waiting: make(chan struct{})}
	ctx, interrupt := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runWith(ctx, []string{"accounts", "create", "shop", "--password-stdin", "--db", db},
			&env{stdin: stdin, stdout: io.Discard, stderr: io.Discard})
	}()
	select {
	case <-stdin.waiting:
	case err := <-done:
		t.Fatalf("accounts create --password-stdin ended before it read a password: %v", err)
	}
	interrupt(errors.New("interrupt signal received"))
	select {
	case err := <-done:
		if err == nil || isUsageErr(err) || !strings.Contains(err.Error(), "interrupt") {
			t.Fatalf("accounts create interrupted at the prompt: %v, want a failure that says it was interrupted", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("accounts create --password-stdin went on waiting for a password after a signal")
	}
	if list, err := cli(t, "", "accounts", "list", "--db", db); err != nil || strings.Contains(list, "shop") {
		t.Fatalf("after the interrupted create: %v\n%s", err, list)
	}
}

// promptReader is stdin that says when a read first waits on it.
type promptReader struct {
	r       io.Reader
	once    sync.Once
	waiting chan struct{}
}

func (p *promptReader) Read(b []byte) (int, error) {
	p.once.Do(func() { close(p.waiting) })
	return p.r.Read(b)
}

// A code length is changed together with the test numbers' codes, in one
// command and in either order: each alone is refused while the other
// stands (a code of the wrong length could never be validated).
func TestAccountsSetCodeLengthWithTestNumbers(t *testing.T) {
	t.Parallel()
	db := newAccount(t)
	if _, err := cli(t, "", "accounts", "set", "shop", "testNumbers=12015550123:code=123456", "--db", db); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, "", "accounts", "set", "shop", "codeLength=8", "--db", db); !isUsageErr(err) {
		t.Fatalf("codeLength=8 alone: %v, want a usage error", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"codeLength=8", "testNumbers=12015550123:code=12345678"}, `"codeLength":8,"testNumbers":{"12015550123":{"code":"12345678"`},
		{[]string{"testNumbers=12015550123:code=87654321", "codeLength=4", "codeLength=8"}, `"codeLength":8,"testNumbers":{"12015550123":{"code":"87654321"`},
		{[]string{"testNumbers=12015550123:code=4321", "codeLength=4"}, `"codeLength":4,"testNumbers":{"12015550123":{"code":"4321"`},
	} {
		out, err := cli(t, "", append([]string{"accounts", "set", "shop", "--db", db}, tc.args...)...)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Errorf("accounts set shop %q: %v %q; want %s", tc.args, err, out, tc.want)
		}
	}
	// A test number's code still has to fit the length the command leaves.
	if _, err := cli(t, "", "accounts", "set", "shop", "codeLength=6", "testNumbers=12015550123:code=12345678", "--db", db); !isUsageErr(err) {
		t.Fatalf("a code of another length than the new codeLength: %v, want a usage error", err)
	}
}
