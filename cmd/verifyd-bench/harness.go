package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"verifyd/otp"
	"verifyd/sqlite"
)

// harness holds what the workloads share: the binaries, the server key, the
// baseline and its measurement, the phone numbers, and the report.
type harness struct {
	cfg      *config
	progress io.Writer
	dir      string // temp dir: binaries, databases, logs, profiles
	bin      string // verifyd
	key      string // the server key every verifyd runs with (hex)
	keyBytes []byte
	nums     numbers

	// dbCPU, when set, reads the CPU time of the database server the
	// workload runs on.
	dbCPU func() time.Duration

	base  *process // the baseline server, while it runs
	rep   *report
	procs []*process // every process still running, for close
}

const benchAccount = "bench"

func newHarness(ctx context.Context, c *config, progress io.Writer) (*harness, error) {
	dir, err := os.MkdirTemp("", "verifyd-bench-")
	if err != nil {
		return nil, err
	}
	h := &harness{cfg: c, progress: progress, dir: dir, rep: newReport(c)}
	if c.verifydBin != "" {
		h.bin = c.verifydBin
		h.rep.revision = "the binary " + c.verifydBin
	} else {
		root, err := moduleRoot(ctx)
		if err != nil {
			h.close()
			return nil, err
		}
		h.logf("building verifyd")
		h.rep.revision = revision(ctx, root)
		if h.bin, err = buildVerifyd(ctx, root, dir); err != nil {
			h.close()
			return nil, err
		}
	}
	key, err := verifydCLI(ctx, h.bin, nil, "keygen")
	if err != nil {
		h.close()
		return nil, err
	}
	h.key = strings.TrimSpace(key)
	if h.keyBytes, err = otp.ParseKey(h.key); err != nil {
		h.close()
		return nil, fmt.Errorf("verifyd keygen: %w", err)
	}
	return h, nil
}

func (h *harness) close() {
	for _, p := range h.procs {
		p.stop()
	}
	h.procs = nil
	if h.cfg.keep {
		fmt.Fprintf(h.progress, "verifyd-bench: kept %s\n", h.dir)
		return
	}
	os.RemoveAll(h.dir)
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.progress, "verifyd-bench: "+format+"\n", args...)
}

// runAll runs the baseline, then each workload asked for. A workload that
// fails to run is reported and the next one still runs.
func (h *harness) runAll(ctx context.Context) (*report, error) {
	needBaseline := false
	for _, w := range h.cfg.workloads {
		switch w {
		case "create", "validate", "flow", "pg":
			needBaseline = true
		}
	}
	if needBaseline {
		if err := h.startBaseline(ctx); err != nil {
			return h.rep, fmt.Errorf("baseline: %w", err)
		}
	}
	var failed []string
	for _, w := range h.cfg.workloads {
		if ctx.Err() != nil {
			return h.rep, ctx.Err()
		}
		var err error
		switch w {
		case "create":
			err = h.runCreate(ctx)
		case "validate":
			err = h.runValidate(ctx)
		case "flow":
			err = h.runFlow(ctx)
		case "e2e":
			err = h.runEndToEnd(ctx)
		case "growth":
			err = h.runGrowth(ctx)
		case "smpp":
			err = h.runSMPPBench(ctx)
		case "pg":
			err = h.runPostgres(ctx)
		}
		if err != nil {
			h.logf("%s: %v", w, err)
			h.rep.failures = append(h.rep.failures, fmt.Sprintf("%s: %v", w, err))
			failed = append(failed, w)
		}
	}
	if len(failed) > 0 {
		return h.rep, fmt.Errorf("workloads that did not run: %s", strings.Join(failed, ", "))
	}
	return h.rep, nil
}

// start starts a server process and keeps it for close.
func (h *harness) start(ctx context.Context, name, bin string, args, env []string,
	ready func(stdout, stderr []byte) (string, bool)) (*process, error) {
	p, err := startProcess(ctx, h.dir, name, bin, args, env, ready)
	if err != nil {
		return nil, err
	}
	h.procs = append(h.procs, p)
	return p, nil
}

// stop stops a server the harness started.
func (h *harness) stop(p *process) {
	p.stop()
	for i, q := range h.procs {
		if q == p {
			h.procs = append(h.procs[:i], h.procs[i+1:]...)
			break
		}
	}
}

// startVerifyd runs `verifyd serve` on db with the harness's server key.
func (h *harness) startVerifyd(ctx context.Context, name, db string, extra ...string) (*process, error) {
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db, "--log-format", "json"}, extra...)
	return h.start(ctx, name, h.bin, args, []string{"VERIFYD_SECRET_KEY=" + h.key, "GOGC=" + serverGOGC}, verifydReady)
}

// sqliteDB makes a fresh SQLite database with the load-test account and
// returns its --db value and the account's secret.
func (h *harness) sqliteDB(ctx context.Context, name string) (db, path, secret string, err error) {
	path = filepath.Join(h.dir, name+".db")
	db = "sqlite:" + path
	secret, err = createAccount(ctx, h.bin, db, benchAccount)
	return db, path, secret, err
}

// measure drives p (and the others in more) and, with -perf, profiles the
// verifyd processes over the measured window.
//
// It also measures the CPU the servers and the harness itself used in the
// window, in cores: a server near 2 cores on this 2-core machine is bound by
// its own work, one far below it waits (on a disk, a lock, a database).
func (h *harness) measure(name string, spec runSpec, fn op, servers ...*process) result {
	var (
		prof           *perfRecording
		srv0, srv1     int64
		db0, db1       time.Duration
		self0, self1   time.Duration
		wr0, wr1       writerCounts
		onStart, onEnd = spec.onStart, spec.onEnd
		serverTicks    = func() (n int64) {
			for _, p := range servers {
				n += p.cpuTicks()
			}
			return n
		}
	)
	spec.onStart = func() {
		if onStart != nil {
			onStart()
		}
		if h.cfg.perf {
			// Only verifyd: the baseline's profile would say nothing.
			var profiled []*process
			for _, p := range servers {
				if strings.HasPrefix(p.name, "verifyd") {
					profiled = append(profiled, p)
				}
			}
			if len(profiled) > 0 {
				prof = startPerf(h.dir, name, profiled, h.progress)
			}
		}
		wr0 = scrapeWriter(servers)
		srv0, self0 = serverTicks(), selfCPU()
		if h.dbCPU != nil {
			db0 = h.dbCPU()
		}
	}
	spec.onEnd = func() {
		srv1, self1 = serverTicks(), selfCPU()
		if h.dbCPU != nil {
			db1 = h.dbCPU()
		}
		wr1 = scrapeWriter(servers)
		if onEnd != nil {
			onEnd()
		}
		prof.finish()
	}
	h.logf("%s: %d connections, %v warm-up, %v measured", name, spec.conns, spec.warmup, spec.dur)
	r := drive(spec, fn)
	r.serverCPU = float64(srv1-srv0) / ticksPerSecond / spec.dur.Seconds()
	r.clientCPU = (self1 - self0).Seconds() / spec.dur.Seconds()
	r.dbCPU = (db1 - db0).Seconds() / spec.dur.Seconds()
	r.writer = wr1.minus(wr0)
	h.logf("%s: %.0f/s, p50 %v, p99 %v, %d errors, CPU: server %.2f, harness %.2f, database %.2f cores %s",
		name, r.rate(), r.pct(50), r.pct(99), r.errs, r.serverCPU, r.clientCPU, r.dbCPU, r.writer.describe(r.window))
	for _, s := range r.samples {
		h.logf("%s: error: %s", name, s)
	}
	return r
}

// spec is the common run shape.
func (h *harness) spec(addrs []string, secret string) runSpec {
	return runSpec{addrs: addrs, user: benchAccount, pass: secret, conns: h.cfg.conns,
		warmup: h.cfg.warmup, dur: h.cfg.dur}
}

// startBaseline starts the baseline server, which runs through every
// workload compared with it.
func (h *harness) startBaseline(ctx context.Context) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	h.base, err = h.start(ctx, "baseline", self, nil,
		[]string{roleEnv + "=baseline", "VERIFYD_BENCH_ADDR=127.0.0.1:0", "GOGC=" + serverGOGC}, baselineReady)
	return err
}

// serverGOGC is the garbage collector setting of both servers: the one
// verifyd runs with unless told otherwise. With Go's default (100) the
// baseline spent 2-3 us more per request than with 300, which made every
// ratio to it a few percent kinder to verifyd.
const serverGOGC = "300"

// contender is one side of an alternating measurement.
type contender struct {
	name    string
	spec    runSpec
	fn      op
	servers []*process
	res     result
}

// alternate measures the contenders in turn, in slices of at most 2 s,
// until each has had the configured duration, and pools each one's slices.
// On a shared machine whatever else runs in the meantime then falls on all
// of them alike, where two runs a minute apart would compare two different
// minutes. Each contender warms up before its first slice only; hooks and
// profiles run in the first slice only.
func (h *harness) alternate(cs ...*contender) {
	slice := min(2*time.Second, h.cfg.dur)
	n := int((h.cfg.dur + slice - 1) / slice)
	perf := h.cfg.perf
	defer func() { h.cfg.perf = perf }()
	for i := range n {
		for _, c := range cs {
			spec := c.spec
			spec.dur = slice
			if i > 0 {
				spec.warmup, spec.onStart, spec.onEnd = 0, nil, nil
			}
			r := h.measure(fmt.Sprintf("%s, slice %d of %d", c.name, i+1, n), spec, c.fn, c.servers...)
			c.res = c.res.merge(r)
		}
		h.cfg.perf = false
	}
}

// versusBaseline measures fn on verifyd (servers, spec) alternating with
// creates on the baseline, adds the baseline's row, and returns verifyd's
// result and the baseline's, which its goal compares with.
func (h *harness) versusBaseline(workload string, spec runSpec, fn op, servers ...*process) (verifyd, baseline *result) {
	// The baseline checks no credentials, but gets the same header, so that
	// both servers read the same bytes.
	bspec := h.spec([]string{h.base.addr}, "x")
	b := &contender{name: workload + ": baseline", spec: bspec, fn: createOp(&h.nums, nil), servers: []*process{h.base}}
	v := &contender{name: workload + ": verifyd", spec: spec, fn: fn, servers: servers}
	h.alternate(b, v)
	h.rep.add(row{workload: workload, target: "baseline", res: b.res, mem: h.base.mem(),
		note: "creates, in slices alternating with verifyd's"})
	return &v.res, &b.res
}

func (h *harness) runCreate(ctx context.Context) error {
	db, _, secret, err := h.sqliteDB(ctx, "create")
	if err != nil {
		return err
	}
	p, err := h.startVerifyd(ctx, "verifyd-create", db)
	if err != nil {
		return err
	}
	defer h.stop(p)
	r, base := h.versusBaseline("create", h.spec([]string{p.addr}, secret), createOp(&h.nums, nil), p)
	m := p.mem()
	h.rep.add(row{workload: "create", target: "verifyd", res: *r, mem: m, goal: goalCreate, versus: base})
	h.rep.memory(m)
	return nil
}

// poolSize is how many pre-created requests a validate run can use up at
// the rate it is sized for (2.5 validates per request on average).
func (h *harness) poolSize() int {
	secs := (h.cfg.warmup + h.cfg.dur).Seconds()
	return max(1000, int(float64(h.cfg.poolRate)*secs/2.5))
}

func (h *harness) runValidate(ctx context.Context) error {
	db, path, secret, err := h.sqliteDB(ctx, "validate")
	if err != nil {
		return err
	}
	rs, err := h.loadSQLite(ctx, path, h.poolSize(), 0)
	if err != nil {
		return err
	}
	p, err := h.startVerifyd(ctx, "verifyd-validate", db)
	if err != nil {
		return err
	}
	defer h.stop(p)
	var next atomic.Int64
	r, base := h.versusBaseline("validate", h.spec([]string{p.addr}, secret), validateOp(rs, &next), p)
	note := ""
	if r.exhausted {
		note = fmt.Sprintf("the %d pre-created requests ran out: raise -pool-rate", rs.len())
	}
	h.rep.add(row{workload: "validate", target: "verifyd", res: *r, mem: p.mem(),
		goal: goalValidate, versus: base, note: note})
	return nil
}

// loadSQLite pre-creates n requests in the database at path, with the
// server stopped. maxAttempts 0 is the default lock threshold.
func (h *harness) loadSQLite(ctx context.Context, path string, n, maxAttempts int) (*rows, error) {
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return nil, err
	}
	if maxAttempts == 0 {
		maxAttempts = 5
	}
	start := time.Now()
	rs, err := loadRows(ctx, store, loadSpec{n: n, account: benchAccount, key: h.keyBytes,
		maxAttempts: maxAttempts, nums: &h.nums})
	if err != nil {
		return nil, err
	}
	took := time.Since(start)
	h.logf("pre-created %d requests in %v (%.0f/s)", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	return rs, nil
}

func (h *harness) runFlow(ctx context.Context) error {
	db, _, secret, err := h.sqliteDB(ctx, "flow")
	if err != nil {
		return err
	}
	// --dev serves the inbox API, where the flow reads its codes.
	p, err := h.startVerifyd(ctx, "verifyd-flow", db, "--dev")
	if err != nil {
		return err
	}
	defer h.stop(p)
	var stats flowStats
	r, base := h.versusBaseline("full flow", h.spec([]string{p.addr}, secret), flowOp(&h.nums, &stats), p)
	note := ""
	if flows := stats.flows.Load(); flows > 0 {
		note = fmt.Sprintf("%.1f inbox reads per flow", float64(stats.polls.Load())/float64(flows))
	}
	h.rep.add(row{workload: "full flow", target: "verifyd", unit: "pairs/s", res: *r, mem: p.mem(),
		goal: goalFlow, versus: base, note: note})
	return nil
}

func (h *harness) runEndToEnd(ctx context.Context) error {
	const window = 50
	smsc, err := startSMSC("bench", "pw")
	if err != nil {
		return err
	}
	defer smsc.close()
	db, _, secret, err := h.sqliteDB(ctx, "e2e")
	if err != nil {
		return err
	}
	p, err := h.startVerifyd(ctx, "verifyd-e2e", db,
		"--sms", smsc.URL("bench", "pw", fmt.Sprintf("window=%d&binds=1", window)))
	if err != nil {
		return err
	}
	defer h.stop(p)
	// Wait for the bind, so the run measures delivery, not the first
	// connection.
	if !smsc.Wait(10*time.Second, func() bool { return smsc.Counters().Binds > 0 }) {
		return fmt.Errorf("verifyd did not bind to the SMSC within 10 s (see %s)", p.log)
	}
	// Each create answered 202, with when: the row counts the creates
	// answered within the measured window whose submit_sm reached the SMSC
	// within it too.
	type answered struct {
		number string
		at     time.Time
	}
	var (
		mu                          sync.Mutex
		answers                     []answered
		created                     atomic.Int64
		start, end                  time.Time
		before, after               int
		submitsBefore, submitsAfter uint64
	)
	record := func(number string) {
		at := time.Now()
		created.Add(1)
		mu.Lock()
		answers = append(answers, answered{number, at})
		mu.Unlock()
	}
	spec := h.spec([]string{p.addr}, secret)
	spec.onStart = func() { start, before, submitsBefore = time.Now(), smsc.distinct(), smsc.Count() }
	spec.onEnd = func() { end, after, submitsAfter = time.Now(), smsc.distinct(), smsc.Count() }
	r := h.measure("end to end", spec, createOp(&h.nums, record), p)
	m := p.mem()

	// Every 202 must reach the SMSC, even if after the window.
	drainStart := time.Now()
	drained := waitFor(60*time.Second, func() bool { return smsc.distinct() >= int(created.Load()) })
	mu.Lock()
	var delivered int
	for _, a := range answers {
		if !a.at.Before(start) && a.at.Before(end) && smsc.arrivedBy(a.number, end) {
			delivered++
		}
	}
	mu.Unlock()
	messages := float64(delivered) / end.Sub(start).Seconds()
	note := fmt.Sprintf("rate: creates answered 202 in the window whose submit_sm reached the SMSC in it; "+
		"creates %.0f/s; submits arriving in the window %.0f/s; max in flight %d (window %d)",
		r.rate(), float64(after-before)/end.Sub(start).Seconds(), smsc.MaxInFlight(), window)
	if drained {
		note += fmt.Sprintf("; all %d 202s at the SMSC %v after the end", created.Load(), time.Since(drainStart).Round(time.Millisecond))
	} else {
		note += fmt.Sprintf("; only %d of %d 202s reached the SMSC within 60 s", smsc.distinct(), created.Load())
	}
	// At least once is the promise, but a text sent twice costs the
	// operator twice: say how often it happened.
	dups := int64(smsc.Count()) - int64(smsc.distinct())
	if dups > 0 {
		note += fmt.Sprintf("; %d submits were repeats of a message already at the SMSC (%.0f/s in the window)",
			dups, (float64(submitsAfter-submitsBefore)-float64(after-before))/h.cfg.dur.Seconds())
	}
	bad := !drained || smsc.MaxInFlight() > window
	h.rep.add(row{workload: "end to end", target: "verifyd", unit: "msgs/s", res: r, rate: messages,
		mem: m, goal: goalEndToEnd, note: note, broken: bad})
	return nil
}

// runGrowth measures validate latency with few and with many stored
// requests, each in a fresh database and its own server; the two servers
// run side by side and are measured in alternating slices.
func (h *harness) runGrowth(ctx context.Context) error {
	type side struct {
		n      int
		name   string
		p      *process
		secret string
		fn     op
		res    result
	}
	sides := []*side{{n: 1000}, {n: h.cfg.growthRows}}
	for _, sd := range sides {
		sd.name = "validate, " + count(sd.n) + " stored"
		dbName := fmt.Sprintf("growth-%d", sd.n)
		db, path, secret, err := h.sqliteDB(ctx, dbName)
		if err != nil {
			return err
		}
		// Rows that never lock, so that a small table serves a whole run.
		rs, err := h.loadSQLite(ctx, path, sd.n, 1<<30)
		if err != nil {
			return err
		}
		if sd.p, err = h.startVerifyd(ctx, "verifyd-"+dbName, db); err != nil {
			return err
		}
		defer h.stop(sd.p)
		sd.secret, sd.fn = secret, wrongCodeOp(rs)
	}
	var cs []*contender
	for _, sd := range sides {
		cs = append(cs, &contender{name: sd.name, spec: h.spec([]string{sd.p.addr}, sd.secret), fn: sd.fn,
			servers: []*process{sd.p}})
	}
	h.alternate(cs...)
	for i, c := range cs {
		sides[i].res = c.res
	}
	for i, sd := range sides {
		rw := row{workload: sd.name, target: "verifyd", res: sd.res, mem: sd.p.mem(),
			note: "in slices alternating with the other size"}
		if i > 0 {
			rw.goal, rw.versus = goalGrowth, &sides[0].res
			if sd.n < 1_000_000 {
				rw.note += "; the target is for 1M stored: run with -growth"
			}
		}
		h.rep.add(rw)
	}
	return nil
}

// runSMPPBench runs the SMPP package's submit benchmark and quotes it.
func (h *harness) runSMPPBench(ctx context.Context) error {
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkSubmit$",
		"-benchtime", h.cfg.smppTime.String(), "./smpp")
	cmd.Dir = root
	h.logf("smpp: %s", strings.Join(cmd.Args, " "))
	b, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, b)
	}
	rate, inFlight, ok := parseSubmitBench(string(b))
	if !ok {
		return fmt.Errorf("no submits/s in the benchmark output:\n%s", b)
	}
	h.rep.add(row{workload: "smpp submit, 1 bind", target: "smpp client", unit: "submits/s", rate: rate,
		goal: goalSMPP, note: fmt.Sprintf("max in flight %g (window 50); go test -bench BenchmarkSubmit ./smpp", inFlight),
		broken: inFlight > 50, noLatency: true})
	return nil
}

// parseSubmitBench reads the metrics of BenchmarkSubmit's result line.
func parseSubmitBench(out string) (rate, inFlight float64, ok bool) {
	for line := range strings.SplitSeq(out, "\n") {
		if !strings.HasPrefix(line, "BenchmarkSubmit") {
			continue
		}
		f := strings.Fields(line)
		for i := 1; i < len(f); i++ {
			var v float64
			if _, err := fmt.Sscan(f[i-1], &v); err != nil {
				continue
			}
			switch f[i] {
			case "submits/s":
				rate, ok = v, true
			case "max-in-flight":
				inFlight = v
			}
		}
	}
	return rate, inFlight, ok
}

// count writes 1000 as 1k and 1000000 as 1M.
func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// waitFor polls cond every 5 ms until it holds or timeout passes. (The
// fake SMSC's own Wait sleeps through submits when it records none.)
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
