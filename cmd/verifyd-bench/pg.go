package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"verifyd/postgres"
	"verifyd/postgres/pgtest"
)

// runPostgres runs two verifyd instances on one PostgreSQL database, the
// scale-out shape of DESIGN.md, with the connections split evenly between
// them: first creates, then validates of pre-created requests.
func (h *harness) runPostgres(ctx context.Context) error {
	dsn := h.cfg.pgDSN
	if dsn == "" {
		h.logf("pg: starting a throwaway PostgreSQL cluster")
		startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		cluster, err := pgtest.Start(startCtx)
		cancel()
		if err != nil {
			return err
		}
		defer cluster.Stop()
		if dsn, err = cluster.CreateDatabase(ctx, "verifyd_bench"); err != nil {
			return err
		}
		h.dbCPU = cluster.CPUTime
		defer func() { h.dbCPU = nil }()
	}
	// The sampler's plain connection takes no pool settings.
	plainDSN := dsn
	if h.cfg.pgPool > 0 {
		dsn += sep(dsn) + fmt.Sprintf("pool_max_conns=%d", h.cfg.pgPool)
	}
	// A database given with -pg-dsn may have run the harness before: a
	// fresh account name keeps runs apart.
	var suffix [4]byte
	rand.Read(suffix[:])
	account := benchAccount + "-" + hex.EncodeToString(suffix[:])
	secret, err := createAccount(ctx, h.bin, dsn, account)
	if err != nil {
		return err
	}
	var servers []*process
	for i := range 2 {
		p, err := h.startVerifyd(ctx, fmt.Sprintf("verifyd-pg-%d", i+1), dsn)
		if err != nil {
			return err
		}
		defer h.stop(p)
		servers = append(servers, p)
	}
	addrs := []string{servers[0].addr, servers[1].addr}
	spec := h.spec(addrs, secret)
	spec.user = account

	r, base := h.versusBaseline("create, PostgreSQL", h.sampleWaits(spec, plainDSN, "pg create"),
		createOp(&h.nums, nil), servers...)
	h.rep.add(row{workload: "create, PostgreSQL", target: "2 x verifyd", res: *r, mem: peak(servers),
		goal: goalPostgres, versus: base, note: pgNote(*r)})

	store, err := postgres.Open(ctx, dsn)
	if err != nil {
		return err
	}
	start := time.Now()
	rs, err := loadRows(ctx, store, loadSpec{n: h.poolSize(), account: account, key: h.keyBytes,
		maxAttempts: 5, nums: &h.nums})
	store.Close()
	if err != nil {
		return err
	}
	h.logf("pre-created %d requests in PostgreSQL in %v", rs.len(), time.Since(start).Round(time.Millisecond))
	var next atomic.Int64
	r, base = h.versusBaseline("validate, PostgreSQL", h.sampleWaits(spec, plainDSN, "pg validate"),
		validateOp(rs, &next), servers...)
	note := pgNote(*r)
	if r.exhausted {
		note = fmt.Sprintf("the %d pre-created requests ran out: raise -pool-rate", rs.len())
	}
	h.rep.add(row{workload: "validate, PostgreSQL", target: "2 x verifyd", res: *r, mem: peak(servers),
		goal: goalPostgres, versus: base, note: note})
	return nil
}

// peak is the memory of the process with the highest peak.
func peak(ps []*process) memory {
	var m memory
	for _, p := range ps {
		if pm := p.mem(); pm.hwm > m.hwm {
			m = pm
		}
	}
	return m
}

// sep is what joins one more parameter to a URL's query.
func sep(dsn string) string {
	if strings.Contains(dsn, "?") {
		return "&"
	}
	return "?"
}

// pgNote says where the PostgreSQL rows' memory and CPU figures come from.
func pgNote(r result) string {
	note := "memory and CPU: both instances (memory the larger one's)"
	if r.dbCPU > 0 {
		note += fmt.Sprintf("; PostgreSQL used %.2f cores", r.dbCPU)
	}
	return note
}

// sampleWaits makes spec sample what the database sessions do during the
// measured window, and log it.
func (h *harness) sampleWaits(spec runSpec, dsn, name string) runSpec {
	var ws *waitSampler
	spec.onStart = func() { ws = startWaitSampler(dsn) }
	spec.onEnd = func() {
		lines, err := ws.stop()
		if err != nil {
			h.logf("%s: sampling pg_stat_activity: %v", name, err)
		}
		h.logf("%s: PostgreSQL sessions, on average over the window:", name)
		for i, l := range lines {
			if i == 8 {
				break
			}
			h.logf("%s:   %s", name, l)
		}
	}
	return spec
}
