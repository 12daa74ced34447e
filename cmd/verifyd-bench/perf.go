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

// finish stops the recording and writes its summaries beside the data:
// NAME.perf.txt (self time by function) and the package totals, which are
// also printed.
func (r *perfRecording) finish() {
	if r == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGINT)
	r.cmd.Wait()
	out, err := exec.Command("perf", "report", "-i", r.data, "--stdio", "--no-children",
		"--sort", "symbol", "-g", "none", "--percent-limit", "0.3").Output()
	if err != nil {
		fmt.Fprintf(r.progress, "verifyd-bench: perf report: %v\n", err)
		return
	}
	txt := strings.TrimSuffix(r.data, ".data") + ".txt"
	byPkg := packageTotals(out)
	var b bytes.Buffer
	b.WriteString("CPU by package (self time):\n")
	for i, p := range byPkg {
		if i == 12 {
			break
		}
		fmt.Fprintf(&b, "  %5.1f%%  %s\n", p.pct, p.name)
	}
	b.WriteString("\n")
	b.Write(out)
	os.WriteFile(txt, b.Bytes(), 0o644)
	fmt.Fprintf(r.progress, "verifyd-bench: profile %s\n", txt)
	for i, p := range byPkg {
		if i == 8 {
			break
		}
		fmt.Fprintf(r.progress, "verifyd-bench:   %5.1f%%  %s\n", p.pct, p.name)
	}
}

type pkgShare struct {
	name string
	pct  float64
}

// perfLine is one "  12.34%  [.] symbol" line of perf report --sort symbol.
var perfLine = regexp.MustCompile(`^\s*([0-9.]+)%\s+\[(.)\]\s+(.*)$`)

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
