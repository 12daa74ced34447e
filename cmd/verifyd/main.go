// Command verifyd is the verifyd server and its administration tool.
//
//	verifyd serve      run the API server and the delivery workers
//	verifyd accounts   create, list, disable and configure accounts
//	verifyd migrate    apply the database schema
//	verifyd limits     show the conversion watch's blocks; show or reset a number's limits
//	verifyd keygen     print a new server key
//	verifyd send       ask a server to send a code (client)
//	verifyd validate   ask a server to check a code (client)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// The heap under load is mostly request garbage over a small live
		// set (SQLite's page caches are outside it): collecting a third as
		// often costs tens of megabytes and saves a tenth of the CPU of a
		// request (verifyd-bench, create). GOGC in the environment decides.
		debug.SetGCPercent(gcPercent)
	}
	// Both listen from the start, so that no signal falls between them.
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go exitOnSecondSignal(signals, os.Stderr, os.Exit)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitOnSecondSignal ends the process at the second SIGINT or SIGTERM.
// The first starts a graceful stop, which may wait up to --shutdown-timeout
// for requests and submits in flight; an operator who will not wait (a
// second Ctrl-C) must not need kill -9. What was answered is committed
// already; what is cut off was never answered, and messages still being
// handed over are sent again once their lease runs out.
func exitOnSecondSignal(signals <-chan os.Signal, stderr io.Writer, exit func(int)) {
	<-signals
	s := <-signals
	fmt.Fprintf(stderr, "verifyd: second signal (%v): stopping at once, without waiting for the requests and submits in flight\n", s)
	exit(1)
}

// gcPercent is the GOGC verifyd runs with when the environment sets none.
const gcPercent = 300

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

// exitCode prints err as one line and maps it to the documented status:
// 0 success, 2 bad flags, 1 anything else.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "verifyd:", oneLine(err.Error()))
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// oneLine folds a message onto one line: some causes (a driver's dial
// errors, one per address tried; an HTML error page) span several, and
// scripts read the failure as the one line on stderr.
func oneLine(msg string) string {
	return strings.Join(strings.Fields(msg), " ")
}

const usage = `usage: verifyd COMMAND [flags]

commands:
  serve       run the API server and the delivery workers
  accounts    create | list | disable | enable | set: manage API accounts
  migrate     apply the database schema migrations
  limits      status | show | reset: what the conversion watch blocks; why a number is refused, and clearing it
  keygen      print a new random server key (64 hex characters)
  send        ask a server to send a code: prints the request id
  validate    ask a server to check a code: prints the status
  version     print the version and commit this binary was built from

Every flag can also be set in the environment: --db is VERIFYD_DB,
--default-from is VERIFYD_DEFAULT_FROM, and so on.
Run 'verifyd COMMAND -h' for a command's flags.`

// run is the whole program, with its surroundings passed in so that tests
// can drive it end to end.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	return runWith(ctx, args, &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr})
}

func runWith(ctx context.Context, args []string, e *env) error {
	e.defaults()
	if len(args) == 0 {
		return usagef("no command given; run 'verifyd help' for the commands")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, e)
	case "accounts":
		return accounts(ctx, rest, e)
	case "migrate":
		return migrate(ctx, rest, e)
	case "limits":
		return limits(ctx, rest, e)
	case "keygen":
		return keygen(rest, e)
	case "send":
		return send(ctx, rest, e)
	case "validate":
		return validate(ctx, rest, e)
	case "version", "--version":
		return version(rest, e)
	case "help", "-h", "--help":
		fmt.Fprintln(e.stdout, usage)
		return nil
	}
	return usagef("unknown command %q; run 'verifyd help' for the commands", cmd)
}
