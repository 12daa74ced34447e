package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// verifyd serves no /debug/pprof, and a profile is needed exactly when a
// target is missed under real load. Linux perf samples the running server
// from outside, with no flag or rebuild: Go binaries keep their symbols and
// frame pointers, so the samples name Go functions, and summing them by
// package says which package owns the time.

// perfRecording is a perf record attached to servers for one run.
type perfRecording struct {
	cmd      *exec.Cmd
	data     string
	progress io.Writer
}

// startPerf attaches perf to the servers' pids; nil (a no-op) if perf
// cannot run.
func startPerf(dir, name string, servers []*process, progress io.Writer) *perfRecording {
	var pids []string
	for _, p := range servers {
		pids = append(pids, strconv.Itoa(p.cmd.Process.Pid))
	}
	data := filepath.Join(dir, safeName(name)+".perf.data")
	cmd := exec.Command("perf", "record", "-F", "499", "-g", "-p", strings.Join(pids, ","), "-o", data)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(progress, "verifyd-bench: perf: %v (profiles need linux perf)\n", err)
		return nil
	}
	return &perfRecording{cmd: cmd, data: data, progress: progress}
}

// finish stops the recording and writes its summaries beside the data in
// NAME.perf.txt: the verifyd functions that account for the most CPU,
// callees included (which part of verifyd owns the time), then self time
// by package and by function. The first part is also printed.
func (r *perfRecording) finish() {
	if r == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGINT)
	r.cmd.Wait()
	report := func(args ...string) ([]byte, error) {
		return exec.Command("perf", append([]string{"report", "-i", r.data, "--stdio", "--sort", "symbol",
			"-g", "none"}, args...)...).Output()
	}
	self, err := report("--no-children", "--percent-limit", "0.3")
	if err != nil {
		fmt.Fprintf(r.progress, "verifyd-bench: perf report: %v\n", err)
		return
	}
	children, err := report("--children", "--percent-limit", "1")
	if err != nil {
		fmt.Fprintf(r.progress, "verifyd-bench: perf report: %v\n", err)
		return
	}
	var top bytes.Buffer
	top.WriteString("CPU by verifyd function, callees included:\n")
	for _, f := range ownFunctions(children, 14) {
		fmt.Fprintf(&top, "  %5.1f%%  %s\n", f.pct, f.name)
	}
	var b bytes.Buffer
	b.Write(top.Bytes())
	b.WriteString("\nCPU by package, self time:\n")
	for i, p := range packageTotals(self) {
		if i == 15 {
			break
		}
		fmt.Fprintf(&b, "  %5.1f%%  %s\n", p.pct, p.name)
	}
	b.WriteString("\n")
	b.Write(self)
	txt := strings.TrimSuffix(r.data, ".data") + ".txt"
	os.WriteFile(txt, b.Bytes(), 0o644)
	fmt.Fprintf(r.progress, "verifyd-bench: profile %s\n", txt)
	for line := range strings.SplitSeq(strings.TrimSpace(top.String()), "\n") {
		fmt.Fprintf(r.progress, "verifyd-bench:   %s\n", line)
	}
}

// perfChildLine is one "  12.34%  0.05%  [.] symbol" line of perf report
// --children --sort symbol.
var perfChildLine = regexp.MustCompile(`^\s*([0-9.]+)%\s+[0-9.]+%\s+\[(.)\]\s+(\S.*?)\s*(-\s+-\s*)?$`)

// ownFunctions are the n verifyd functions with the most CPU, callees
// included, outermost wrappers (closures' -fm and gowrap frames) left out.
func ownFunctions(report []byte, n int) []pkgShare {
	var out []pkgShare
	sc := bufio.NewScanner(bytes.NewReader(report))
	for sc.Scan() && len(out) < n {
		m := perfChildLine.FindStringSubmatch(sc.Text())
		if m == nil || !strings.HasPrefix(m[3], "verifyd/") || strings.Contains(m[3], "gowrap") ||
			strings.HasSuffix(m[3], "-fm") {
			continue
		}
		pct, _ := strconv.ParseFloat(m[1], 64)
		out = append(out, pkgShare{m[3], pct})
	}
	return out
}

type pkgShare struct {
	name string
	pct  float64
}

// perfLine is one "  12.34%  [.] symbol" line of perf report --no-children
// --sort symbol.
var perfLine = regexp.MustCompile(`^\s*([0-9.]+)%\s+\[(.)\]\s+(\S.*?)\s*(-\s+-\s*)?$`)

// packageTotals sums a perf report's self time by Go package; kernel time
// is "kernel", other native code "native".
func packageTotals(report []byte) []pkgShare {
	sums := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(report))
	for sc.Scan() {
		m := perfLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		pct, _ := strconv.ParseFloat(m[1], 64)
		sums[symbolPackage(m[2], strings.TrimSpace(m[3]))] += pct
	}
	var out []pkgShare
	for k, v := range sums {
		out = append(out, pkgShare{k, v})
	}
	slices.SortFunc(out, func(a, b pkgShare) int {
		if a.pct != b.pct {
			if a.pct > b.pct {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	return out
}

// symbolPackage is the Go package of a symbol such as
// "verifyd/sqlite.(*writer).run" or "modernc.org/libc.Xmemcpy".
func symbolPackage(kind, sym string) string {
	if kind == "k" {
		return "kernel"
	}
	if strings.HasPrefix(sym, "0x") {
		return "unknown"
	}
	slash := strings.LastIndex(sym, "/")
	dot := strings.Index(sym[slash+1:], ".")
	if dot < 0 {
		return "native"
	}
	return sym[:slash+1+dot]
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, s)
}
