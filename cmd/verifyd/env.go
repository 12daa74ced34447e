package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// env is what a command reads from and writes to besides its arguments.
// Tests set now and random to make a run exact.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	now    func() time.Time
	random io.Reader
	// started, when set, receives the server's base URL once it listens.
	started func(url string)
}

func (e *env) defaults() {
	if e.now == nil {
		e.now = time.Now
	}
	if e.random == nil {
		e.random = rand.Reader
	}
	if e.getenv == nil {
		e.getenv = func(string) string { return "" }
	}
	if e.stdin == nil {
		e.stdin = strings.NewReader("")
	}
}

// newFlags returns a flag set whose errors come back to the caller instead
// of exiting. The flag package would print each error, then the whole
// usage, to stderr before the caller's own line: its output is discarded,
// so that a mistake is the one line exitCode prints, and parse prints the
// usage to stdout when it was asked for (-h).
func (e *env) newFlags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: verifyd %s\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// helpHint says where a command's flags are listed, for its usage errors.
func helpHint(fs *flag.FlagSet) string {
	return fmt.Sprintf("run 'verifyd %s -h' for its flags", fs.Name())
}

// parse reads flags from the environment (VERIFYD_NAME, dashes as
// underscores), then from args, where flags may come before or after the
// positional arguments. It returns the positional arguments.
func (e *env) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "VERIFYD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := e.getenv(name); v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = usagef("%s=%q: %v; it sets --%s (%s)", name, v, err, f.Name, helpHint(fs))
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	// Everything after a "--" is positional, even if it starts with "-".
	var tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				fs.SetOutput(e.stdout)
				fs.Usage()
				return nil, err
			}
			return nil, usagef("%s: %v; %s", fs.Name(), err, helpHint(fs))
		}
		args = fs.Args()
		if len(args) == 0 {
			return append(positional, tail...), nil
		}
		// flag stops at the first positional argument: keep it, go on.
		positional = append(positional, args[0])
		args = args[1:]
	}
}
