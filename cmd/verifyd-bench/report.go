package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// goal is one DESIGN.md target and how a row is judged against it.
type goal struct {
	text string
	// judge returns the row's figure against the target ("52%", "1.12x")
	// and whether it meets it.
	judge func(rw row) (string, bool)
}

// versusBaseline is a target of at least min of the baseline's rate.
func versusBaseline(min float64, extra string, also func(rw row) bool) *goal {
	text := fmt.Sprintf(">= %.0f%% of baseline", min*100)
	if extra != "" {
		text += ", " + extra
	}
	return &goal{text: text, judge: func(rw row) (string, bool) {
		if rw.versus == nil || rw.versus.rate() == 0 {
			return "-", false
		}
		ratio := rw.rateValue() / rw.versus.rate()
		ok := ratio >= min && (also == nil || also(rw))
		return fmt.Sprintf("%.0f%%", ratio*100), ok
	}}
}

// atLeast is a target of an absolute rate.
func atLeast(min float64, unit string) *goal {
	return &goal{text: fmt.Sprintf(">= %s %s", thousands(min), unit), judge: func(rw row) (string, bool) {
		return "-", rw.rateValue() >= min
	}}
}

// The targets of DESIGN.md.
var (
	goalCreate = versusBaseline(0.50, "p99 < 10 ms", func(rw row) bool {
		return rw.res.pct(99) < 10*time.Millisecond
	})
	goalValidate = versusBaseline(0.60, "", nil)
	goalFlow     = versusBaseline(0.15, "", nil)
	goalPostgres = versusBaseline(0.25, "", nil)
	goalEndToEnd = atLeast(11_000, "msgs/s")
	goalSMPP     = atLeast(30_000, "submits/s")
	goalGrowth   = &goal{text: "p50 <= 1.5x of 1k stored", judge: func(rw row) (string, bool) {
		if rw.versus == nil || rw.versus.pct(50) == 0 {
			return "-", false
		}
		ratio := float64(rw.res.pct(50)) / float64(rw.versus.pct(50))
		return fmt.Sprintf("%.2fx", ratio), ratio <= 1.5
	}}
)

// memoryLimit is DESIGN.md's bound on the server's RSS under the create
// load.
const memoryLimit = 150 << 20

// row is one line of the table.
type row struct {
	workload, target string
	unit             string  // of the rate; "req/s" when empty
	res              result  // the run
	rate             float64 // overrides res.rate() when set
	mem              memory
	goal             *goal
	versus           *result // what the goal compares with
	note             string
	broken           bool // a condition the row states failed (its note says which)
	noLatency        bool
	memoryOnly       bool
}

func (rw row) rateValue() float64 {
	if rw.rate != 0 {
		return rw.rate
	}
	return rw.res.rate()
}

// verdict is PASS, MISS, or "" for a row without a target.
func (rw row) verdict() (figure, verdict string) {
	if rw.memoryOnly {
		if rw.mem.hwm < memoryLimit {
			return mb(rw.mem.hwm), "PASS"
		}
		return mb(rw.mem.hwm), "MISS"
	}
	if rw.goal == nil {
		return "", ""
	}
	figure, ok := rw.goal.judge(rw)
	switch {
	case rw.res.errs > 0:
		return figure, "MISS (errors)"
	case rw.broken:
		return figure, "MISS (see note)"
	case ok:
		return figure, "PASS"
	}
	return figure, "MISS"
}

// report is the table of a harness run.
type report struct {
	cfg      *config
	started  time.Time
	load     string // /proc/loadavg's first three figures at the start
	revision string // what verifyd was built from
	rows     []row
	failures []string // workloads that could not run
}

func newReport(c *config) *report {
	load := "unknown"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = strings.Join(f[:3], " ")
		}
	}
	return &report{cfg: c, started: time.Now().UTC(), load: load}
}

func (r *report) add(rw row) { r.rows = append(r.rows, rw) }

// memory adds the RSS target's row for the create run.
func (r *report) memory(m memory) {
	r.rows = append(r.rows, row{workload: "memory under create", target: "verifyd", mem: m,
		memoryOnly: true, noLatency: true})
}

var header = []string{"workload", "target", "rate", "p50", "p99", "errors", "RSS peak", "CPU server/harness", "server CPU per op", "vs target", "target (DESIGN.md)", "result", "notes"}

func (r *report) cells() [][]string {
	var out [][]string
	for _, rw := range r.rows {
		unit := rw.unit
		if unit == "" {
			unit = "req/s"
		}
		rate, p50, p99, errs := thousands(rw.rateValue())+" "+unit, ms(rw.res.pct(50)), ms(rw.res.pct(99)), fmt.Sprint(rw.res.errs)
		if rw.noLatency {
			p50, p99 = "-", "-"
		}
		if rw.memoryOnly {
			rate, errs = "-", "-"
		} else if rw.unit == "submits/s" {
			errs = "-"
		}
		mem := "-"
		if rw.mem.hwm > 0 {
			mem = mb(rw.mem.hwm)
		}
		cpu := "-"
		if rw.res.serverCPU > 0 || rw.res.clientCPU > 0 {
			cpu = fmt.Sprintf("%.2f / %.2f", rw.res.serverCPU, rw.res.clientCPU)
		}
		perOp := "-"
		if rw.res.serverCPU > 0 && rw.rateValue() > 0 {
			perOp = fmt.Sprintf("%.0f µs", rw.res.serverCPU*1e6/rw.rateValue())
		}
		figure, verdict := rw.verdict()
		goalText := ""
		if rw.goal != nil {
			goalText = rw.goal.text
		}
		if rw.memoryOnly {
			goalText, figure = "RSS < 150 MB", "-"
		}
		if figure == "" {
			figure = "-"
		}
		note := rw.note
		if w := rw.res.writer.describe(rw.res.window); w != "" {
			note = strings.TrimPrefix(note+"; "+w, "; ")
		}
		if rw.res.errs > 0 && len(rw.res.samples) > 0 {
			note = strings.TrimSpace(note + "; first error: " + rw.res.samples[0])
		}
		out = append(out, []string{rw.workload, rw.target, rate, p50, p99, errs, mem, cpu, perOp, figure, goalText, verdict, note})
	}
	return out
}

// print writes the table as aligned text.
func (r *report) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, c := range r.cells() {
		fmt.Fprintln(tw, strings.Join(c, "\t"))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d connections, %v measured per workload after %v of warm-up.\n", r.cfg.conns, r.cfg.dur, r.cfg.warmup)
	for _, f := range r.failures {
		fmt.Fprintln(w, "did not run:", f)
	}
}

// markdown is the table as a Markdown section: when, where, how, and the
// numbers.
func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Run on %s.\n\n", r.started.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Machine: %s; load average %s when the run started.\n\n", machine(), r.load)
	fmt.Fprintf(&b, "verifyd: %s.\n\n", r.revision)
	fmt.Fprintf(&b, "Command:\n\n```sh\ngo run ./cmd/verifyd-bench %s\n```\n\n", strings.Join(r.cfg.args, " "))
	fmt.Fprintf(&b, "%d connections, %v measured per workload after %v of warm-up.\n\n",
		r.cfg.conns, r.cfg.dur, r.cfg.warmup)
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|")
	for range header {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, c := range r.cells() {
		for i := range c {
			c[i] = strings.ReplaceAll(c[i], "|", `\|`)
		}
		b.WriteString("| " + strings.Join(c, " | ") + " |\n")
	}
	for _, f := range r.failures {
		fmt.Fprintf(&b, "\nDid not run: %s\n", f)
	}
	return b.String()
}

// Markers around the generated part of the Markdown file, so that the text
// around it can be written by hand and survives every run.
const (
	beginMark = "<!-- verifyd-bench: begin -->"
	endMark   = "<!-- verifyd-bench: end -->"
)

// writeMarkdown puts the report between the markers of path, or makes the
// file if there is none.
func (r *report) writeMarkdown(path string) error {
	section := beginMark + "\n" + r.markdown() + endMark + "\n"
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	begin, end := bytes.Index(old, []byte(beginMark)), bytes.Index(old, []byte(endMark))
	var out []byte
	if begin >= 0 && end > begin {
		out = append(out, old[:begin]...)
		out = append(out, section...)
		out = append(out, bytes.TrimPrefix(old[end+len(endMark):], []byte("\n"))...)
	} else {
		out = []byte("# verifyd benchmarks\n\n" + section)
	}
	return os.WriteFile(path, out, 0o644)
}

// machine describes the computer: CPUs, their model, memory, Go.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	memory := "unknown memory"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		for line := range strings.SplitSeq(string(b), "\n") {
			if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
				memory = fmt.Sprintf("%.1f GiB memory", float64(kb)/(1<<20))
				break
			}
		}
	}
	return fmt.Sprintf("nproc %d, %s, %s, %s %s/%s", runtime.NumCPU(), model, memory,
		runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// thousands writes 12345.6 as "12,346".
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/(1<<20)) }
