// Command verifyd-bench measures verifyd against the targets of DESIGN.md.
//
// It builds verifyd, starts it and a bare net/http baseline as separate
// processes on 127.0.0.1, drives each with the same in-process load
// generator (the same connection count, the same duration), checks every
// answer, and prints one table: requests per second, latency, errors,
// server memory, and each ratio against its target.
//
//	go run ./cmd/verifyd-bench                 # every workload, 10 s each
//	go run ./cmd/verifyd-bench -quick          # 2 s each: a smoke test
//	go run ./cmd/verifyd-bench -w create,validate -c 64 -d 10s
//	go run ./cmd/verifyd-bench -growth -pg     # with 1M stored rows, and PostgreSQL
//
// Workloads (-w): create, validate, flow, e2e, growth, smpp, pg.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// roleEnv makes the harness's own executable run as one of its servers.
const roleEnv = "VERIFYD_BENCH_ROLE"

func main() {
	if os.Getenv(roleEnv) == "baseline" {
		runBaseline(os.Getenv("VERIFYD_BENCH_ADDR"))
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "verifyd-bench:", err)
		os.Exit(1)
	}
}

// allWorkloads in the order they run. pg runs only when asked for (-pg or
// -w pg), since it needs PostgreSQL.
var allWorkloads = []string{"create", "validate", "flow", "e2e", "growth", "smpp", "pg"}

// config is the parsed command line.
type config struct {
	dur, warmup time.Duration
	conns       int
	workloads   []string
	growthRows  int
	poolRate    int // validates per second the validate pool is sized for
	pgDSN       string
	pgPool      int    // pool_max_conns for each instance, 0 for verifyd's default
	verifydBin  string // a verifyd binary to use instead of building one
	smppTime    time.Duration
	perf        bool // record a CPU profile of verifyd with perf in each run
	keep        bool
	write       string // a Markdown file to write the report into
	args        []string
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("verifyd-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{args: args}
	fs.DurationVar(&c.dur, "d", 10*time.Second, "measured duration of each workload")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured warm-up before each measured run")
	fs.IntVar(&c.conns, "c", 64, "connections (closed-loop workers) per run")
	ws := fs.String("w", "create,validate,flow,e2e,growth,smpp", "comma-separated workloads: "+strings.Join(allWorkloads, ","))
	quick := fs.Bool("quick", false, "smoke test: 2 s per workload, short warm-up, small growth")
	growth := fs.Bool("growth", false, "growth with 1,000,000 stored verifications (default -growth-rows)")
	fs.IntVar(&c.growthRows, "growth-rows", 100_000, "stored verifications of the large growth run")
	fs.IntVar(&c.poolRate, "pool-rate", 60_000, "validates per second the pre-created validate pool must last at")
	pg := fs.Bool("pg", false, "add the PostgreSQL workload (a throwaway cluster, or -pg-dsn)")
	fs.StringVar(&c.pgDSN, "pg-dsn", "", "an empty PostgreSQL database to use instead of starting a cluster")
	fs.IntVar(&c.pgPool, "pg-pool", 0, "pool_max_conns added to the PostgreSQL DSN of each instance (0: verifyd's default)")
	fs.StringVar(&c.verifydBin, "verifyd", "", "use this verifyd binary instead of building ./cmd/verifyd")
	fs.DurationVar(&c.smppTime, "smpp-benchtime", 3*time.Second, "-benchtime of the SMPP submit benchmark")
	fs.BoolVar(&c.perf, "perf", false, "record a CPU profile of verifyd (perf record) during each measured run; kept with -keep")
	fs.BoolVar(&c.keep, "keep", false, "keep the temp dir (databases, logs, profiles)")
	fs.StringVar(&c.write, "write", "", "also write the report, with the machine and the command, to this Markdown file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		if !set["d"] {
			c.dur = 2 * time.Second
		}
		if !set["warmup"] {
			c.warmup = 300 * time.Millisecond
		}
		if !set["growth-rows"] {
			c.growthRows = 20_000
		}
		if !set["smpp-benchtime"] {
			c.smppTime = time.Second
		}
	}
	if *growth && !set["growth-rows"] {
		c.growthRows = 1_000_000
	}
	for w := range strings.SplitSeq(*ws, ",") {
		if w = strings.TrimSpace(w); w == "" {
			continue
		}
		if !slices.Contains(allWorkloads, w) {
			return nil, fmt.Errorf("unknown workload %q (have %s)", w, strings.Join(allWorkloads, ", "))
		}
		c.workloads = append(c.workloads, w)
	}
	if (*pg || c.pgDSN != "") && !slices.Contains(c.workloads, "pg") {
		c.workloads = append(c.workloads, "pg")
	}
	switch {
	case len(c.workloads) == 0:
		return nil, errors.New("no workload given")
	case c.conns < 1:
		return nil, errors.New("-c must be at least 1")
	case c.dur <= 0:
		return nil, errors.New("-d must be positive")
	case c.growthRows < 1000:
		return nil, errors.New("-growth-rows must be at least 1000")
	}
	if c.pgDSN != "" {
		if err := loopbackOnly(c.pgDSN); err != nil {
			return nil, fmt.Errorf("-pg-dsn: %w", err)
		}
	}
	return c, nil
}

// run is the whole harness.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	h, err := newHarness(ctx, c, stderr)
	if err != nil {
		return err
	}
	defer h.close()
	rep, err := h.runAll(ctx)
	if rep != nil {
		rep.print(stdout)
		if c.write != "" {
			if werr := rep.writeMarkdown(c.write); werr != nil && err == nil {
				err = werr
			}
		}
	}
	return err
}

// loopbackOnly refuses a PostgreSQL DSN any of whose hosts is not this
// machine (127.0.0.1, ::1, localhost, or a unix socket): the harness only
// ever targets 127.0.0.1.
func loopbackOnly(dsn string) error {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return err
	}
	hosts := []string{cfg.Host}
	for _, f := range cfg.Fallbacks {
		hosts = append(hosts, f.Host)
	}
	for _, h := range hosts {
		if strings.HasPrefix(h, "/") || h == "localhost" {
			continue
		}
		if a, err := netip.ParseAddr(h); err == nil && a.IsLoopback() {
			continue
		}
		return fmt.Errorf("host %q is not this machine: the harness only targets 127.0.0.1", h)
	}
	return nil
}
