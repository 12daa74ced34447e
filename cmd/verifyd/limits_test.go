package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"verifyd"
	"verifyd/metrics"
)

// watchNow is the fixed clock of these tests.
var watchNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// runAt runs the command line with the clock at watchNow.
func runAt(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut syncBuffer
	err := runWith(context.Background(), args, &env{stdout: &out, stderr: &errOut, now: func() time.Time { return watchNow }})
	return out.String(), err
}

// pumpInto stores, for account name, n sends created two hours before
// watchNow to consecutive numbers of the range prefix in region, none
// verified.
func pumpInto(t *testing.T, store verifyd.Store, name, prefix, region string, n int) {
	t.Helper()
	a, err := store.FindAccountByName(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	created := watchNow.Add(-2 * time.Hour)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			number := fmt.Sprintf("%s%04d", prefix, i)
			v := &verifyd.Verification{
				ID: fmt.Sprintf("%08x-0000-4000-8000-%s", a.ID, number), AccountID: a.ID,
				PhoneNumber: number, Country: region, NumberStatus: verifyd.NumberOn,
				State: verifyd.StatePending, CodeMAC: []byte{1}, MaxAttempts: 5,
				Created: created, ValidUntil: created.Add(10 * time.Minute), Updated: created,
			}
			if err := store.CreateVerification(t.Context(), v, nil, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

func TestLimitsStatus(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "v.db")
	db := "sqlite:" + path
	for _, args := range [][]string{
		{"accounts", "create", "shop", "--db", db},
		{"accounts", "create", "quiet", "--db", db},
		{"accounts", "set", "shop", "watch=on", "--db", db},
	} {
		if _, err := runAt(t, args...); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
	}
	out, err := runAt(t, "limits", "status", "--db", db)
	if err != nil || !strings.Contains(out, "Blocked:\nnone\n") || !strings.Contains(out, "Near the threshold:\nnone\n") {
		t.Fatalf("status of a quiet database: %v\n%s", err, out)
	}

	store, err := openStore(t.Context(), database{kind: "sqlite", dsn: path})
	if err != nil {
		t.Fatal(err)
	}
	pumpInto(t, store, "shop", "44797908", "GB", 200)
	pumpInto(t, store, "shop", "33612345", "FR", 60)
	pumpInto(t, store, "quiet", "44797908", "GB", 150)
	if _, err := verifyd.RunWatch(t.Context(), store, watchNow); err != nil {
		t.Fatal(err)
	}
	store.Close()

	out, err = runAt(t, "limits", "status", "--db", db)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`quiet\s+country\s+GB\s+150\s+0\s+0\.0%\s+2026-03-01T12:00:00Z\s+2026-03-02T12:00:00Z\s+reported only \(watch=monitor\)`,
		`quiet\s+prefix\s+44797908xxxx\s+150\s+0\s+0\.0%\s+2026-03-01T12:00:00Z\s+2026-03-02T12:00:00Z\s+reported only \(watch=monitor\)`,
		`shop\s+country\s+GB\s+200\s+0\s+0\.0%\s+.*refusing sends`,
		`shop\s+prefix\s+44797908xxxx\s+200\s+0\s+0\.0%\s+.*refusing sends`,
		`(?s)Near the threshold:.*shop\s+prefix\s+33612345xxxx\s+60\s+0\s+0\.0%\s+20\.0% of 100 sends or more`,
		`shop\s+country\s+FR\s+60\s+0\s+0\.0%\s+20\.0% of 100 sends or more`,
	} {
		if !regexp.MustCompile(`(?m)` + line).MatchString(out) {
			t.Errorf("status has no line like %s:\n%s", line, out)
		}
	}

	for _, args := range [][]string{{"limits"}, {"limits", "list"}, {"limits", "status", "extra"}} {
		var ue usageError
		if _, err := runAt(t, append(args, "--db", db)...); !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

// pumpedStore is a SQLite store whose account shop sent 120 codes to one
// prefix of GB and had none verified: enough for the watch to block both.
func pumpedStore(t *testing.T) verifyd.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v.db")
	if _, err := runAt(t, "accounts", "create", "shop", "--db", "sqlite:"+path); err != nil {
		t.Fatal(err)
	}
	store, err := openStore(t.Context(), database{kind: "sqlite", dsn: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	pumpInto(t, store, "shop", "44797908", "GB", 120)
	return store
}

// One maintenance round starts the blocks, logs one masked line each, and
// counts them; the next round starts nothing new.
func TestMaintenanceRoundBlocksLogsAndCounts(t *testing.T) {
	t.Parallel()
	store := pumpedStore(t)

	var logs syncBuffer
	reg := prometheus.NewRegistry()
	mt := &maintenance{store: store, now: func() time.Time { return watchNow },
		logger: slog.New(slog.NewJSONHandler(&logs, nil)), m: metrics.New(reg)}
	for range 2 {
		if err := mt.round(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want one per block (prefix, country):\n%s", len(lines), logs.String())
	}
	for _, want := range []string{`"msg":"conversion watch: would block sends (monitor mode)"`, `"account":"shop"`,
		`"kind":"prefix"`, `"prefix":"********"`, `"kind":"country"`, `"country":"GB"`, `"sends":120`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log has no %s:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "44797908") {
		t.Fatalf("the log holds the prefix:\n%s", logs.String())
	}

	var scrape bytes.Buffer
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			fmt.Fprint(&scrape, f.GetName())
			for _, l := range m.GetLabel() {
				fmt.Fprintf(&scrape, " %s=%s", l.GetName(), l.GetValue())
			}
			fmt.Fprintf(&scrape, " %v\n", m.GetCounter().GetValue()+m.GetGauge().GetValue())
		}
	}
	for _, want := range []string{
		"verifyd_watch_blocks_started_total kind=prefix mode=monitor 1\n",
		"verifyd_watch_blocks_started_total kind=country mode=monitor 1\n",
		"verifyd_watch_blocks kind=prefix mode=monitor 1\n",
		"verifyd_watch_blocks kind=prefix mode=on 0\n",
	} {
		if !strings.Contains(scrape.String(), want) {
			t.Errorf("metrics have no %s:\n%s", want, scrape.String())
		}
	}
}

// lockedElsewhere is a store whose maintenance lock another instance holds
// unless mine is set.
type lockedElsewhere struct {
	verifyd.Store
	mine bool
}

func (s *lockedElsewhere) TryMaintenance(ctx context.Context, fn func(context.Context) error) (bool, error) {
	if !s.mine {
		return false, nil
	}
	return true, fn(ctx)
}

// An instance whose turn finds the lock held elsewhere shows no blocks:
// the gauge is read as the max across instances, and its own last round's
// blocks may have ended since.
func TestMaintenanceTurnWithoutTheLockClearsTheWatchGauges(t *testing.T) {
	t.Parallel()
	store := pumpedStore(t)

	shared := &lockedElsewhere{Store: store, mine: true}
	reg := prometheus.NewRegistry()
	mt := &maintenance{store: shared, now: func() time.Time { return watchNow },
		logger: slog.New(slog.DiscardHandler), m: metrics.New(reg)}
	blocks := func() float64 {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var n float64
		for _, f := range families {
			if f.GetName() == "verifyd_watch_blocks" {
				for _, m := range f.GetMetric() {
					n += m.GetGauge().GetValue()
				}
			}
		}
		return n
	}
	if err := mt.turn(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := blocks(); n != 2 {
		t.Fatalf("%v blocks after a round with the lock, want 2 (prefix, country)", n)
	}
	shared.mine = false
	if err := mt.turn(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := blocks(); n != 0 {
		t.Fatalf("%v blocks after a turn without the lock, want 0", n)
	}
}

func TestAccountsSetAbuseSettings(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + filepath.Join(t.TempDir(), "v.db")
	if _, err := runAt(t, "accounts", "create", "shop", "--db", db); err != nil {
		t.Fatal(err)
	}
	out, err := runAt(t, "accounts", "set", "shop", "failures=50", "failures.cooldown=2d", "watch=on",
		"watch.minSends=40", "watch.minRate=35%", "watch.cooldown=6h", "--db", db)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"maxFailures":50`, `"failureCooldown":"2d"`, `"watch":"on"`, `"watchMinSends":40`,
		`"watchMinRate":0.35`, `"watchCooldown":"6h"`} {
		if !strings.Contains(out, want) {
			t.Errorf("settings %s lack %s", out, want)
		}
	}
	if out, err := runAt(t, "accounts", "set", "shop", "failures=off", "watch=off", "--db", db); err != nil ||
		!strings.Contains(out, `"failuresOff":true`) || !strings.Contains(out, `"watch":"off"`) {
		t.Fatalf("switching off: %v %s", err, out)
	}
	for _, bad := range []string{"failures=0", "failures.cooldown=soon", "watch=loud", "watch.minRate=2", "watch.minSends=-1"} {
		var ue usageError
		if _, err := runAt(t, "accounts", "set", "shop", bad, "--db", db); !errors.As(err, &ue) {
			t.Errorf("set %s: %v, want a usage error", bad, err)
		}
	}
}
