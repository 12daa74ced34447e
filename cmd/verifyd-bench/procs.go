package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// moduleRoot is the directory of the verifyd module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	if root == "." || root == "" {
		return "", errors.New("not inside the verifyd module: run from the repository")
	}
	return root, nil
}

// revision says which commit the working tree is at, and whether it has
// changes beyond it, so that a table can be traced to the code it measured.
func revision(ctx context.Context, root string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "built from a tree outside git"
	}
	rev := "built from commit " + strings.TrimSpace(string(out))
	status, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output()
	if err != nil {
		return rev
	}
	if changesBinary(string(status)) {
		rev += " with uncommitted changes"
	}
	return rev
}

// changesBinary reports whether git status --porcelain lists a change that
// goes into the binary: Go code other than tests, SQL, the module files.
func changesBinary(status string) bool {
	for line := range strings.SplitSeq(status, "\n") {
		// "XY PATH", or "XY OLD -> NEW" for a rename.
		if len(line) < 4 {
			continue
		}
		path := line[3:]
		if _, to, ok := strings.Cut(path, " -> "); ok {
			path = to
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, ".sql") ||
			path == "go.mod" || path == "go.sum" {
			return true
		}
	}
	return false
}

// buildVerifyd builds ./cmd/verifyd of the module into dir and returns the
// binary's path.
func buildVerifyd(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "verifyd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/verifyd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/verifyd: %w\n%s", err, out)
	}
	return bin, nil
}

// process is a server the harness started: verifyd or the baseline.
type process struct {
	name string
	cmd  *exec.Cmd
	addr string // host:port it listens on
	log  string // its stderr (verifyd's log), kept in the temp dir
	done chan struct{}
	err  error // set when done is closed
}

// startProcess starts bin with args, its stdout and stderr in files in dir,
// and waits until ready finds its address in them.
func startProcess(ctx context.Context, dir, name, bin string, args, env []string,
	ready func(stdout, stderr []byte) (string, bool)) (*process, error) {
	outPath := filepath.Join(dir, name+".out")
	logPath := filepath.Join(dir, name+".log")
	stdout, err := os.Create(outPath)
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	// The log goes straight to a file the child writes itself, so that the
	// harness spends no CPU copying it while it measures.
	stderr, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer stderr.Close()

	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// The kernel stops the server if the harness dies, so that no run
	// leaves a process behind. Pdeathsig fires when the thread that forked
	// the child ends, not the process: Go ends a thread when a goroutine
	// locked to it returns (the PostgreSQL cluster's spawner does), so the
	// fork happens on a thread locked to a goroutine that lives until the
	// child is reaped. A fork from any thread once killed the baseline
	// halfway through a run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, on purpose (see above)
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		o, _ := os.ReadFile(outPath)
		e, _ := os.ReadFile(logPath)
		if addr, ok := ready(o, e); ok {
			p.addr = addr
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited at start (%v): %s", name, p.err, tail(e))
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s did not start within a minute: %s", name, tail(e))
		}
	}
}

// verifydReady finds verifyd's start-up log line (JSON) and its address.
func verifydReady(_, stderr []byte) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(stderr))
	for sc.Scan() {
		var line struct{ Msg, URL string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "verifyd listening" {
			return strings.TrimPrefix(line.URL, "http://"), true
		}
	}
	return "", false
}

// stop asks the server to stop (SIGTERM) and kills it if it lingers.
func (p *process) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// memory is a process's peak resident set size, in bytes: the report's
// "RSS peak" column.
type memory struct{ hwm int64 }

// mem reads VmHWM from /proc; zero when the process is gone.
func (p *process) mem() memory {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return memory{}
	}
	var m memory
	for line := range strings.SplitSeq(string(b), "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if key == "VmHWM" {
			m.hwm = kb << 10
		}
	}
	return m
}

// cpuTicks is the CPU time (user and system) the process has used, in
// clock ticks of 1/100 s, the unit of /proc/PID/stat on Linux.
func (p *process) cpuTicks() int64 { return procTicks(p.cmd.Process.Pid) }

// procTicks is the CPU time of process pid, as cpuTicks.
func procTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	ticks, _ := parseStat(b)
	return ticks
}

// parseStat reads the CPU ticks (user and system) of a /proc/PID/stat line.
func parseStat(b []byte) (ticks int64, ok bool) {
	// The command name, field 2, is in parentheses and may hold spaces:
	// count the fields after its closing one. utime and stime are fields
	// 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	user, _ := strconv.ParseInt(f[11], 10, 64)
	system, _ := strconv.ParseInt(f[12], 10, 64)
	return user + system, true
}

// ticksPerSecond is USER_HZ, 100 on every Linux the harness runs on.
const ticksPerSecond = 100

// selfCPU is the harness's own CPU time: the load generator (and the fake
// SMSC, when it runs).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tail is the end of a log, for an error message.
func tail(b []byte) string {
	const n = 2000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// verifydCLI runs a verifyd administration command and returns its stdout.
func verifydCLI(ctx context.Context, bin string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("verifyd %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// createAccount makes the load-test account on db, with every send limit
// off (otherwise the per-number and per-country limits would refuse most
// creates), and returns its secret.
func createAccount(ctx context.Context, bin, db, name string) (string, error) {
	out, err := verifydCLI(ctx, bin, nil, "accounts", "create", name, "--db", db)
	if err != nil {
		return "", err
	}
	secret := strings.TrimSpace(out)
	if secret == "" || strings.ContainsAny(secret, " \n") {
		return "", fmt.Errorf("verifyd accounts create printed %q, want one secret", out)
	}
	if _, err := verifydCLI(ctx, bin, nil, "accounts", "set", name, "limits=off", "--db", db); err != nil {
		return "", err
	}
	return secret, nil
}
