package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"verifyd/otp"
	"verifyd/postgres/pgtest"
)

// One throwaway PostgreSQL cluster serves every test of this package that
// needs one; TestMain stops it.
var (
	pgOnce    sync.Once
	pgCluster *pgtest.Cluster
	pgErr     error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pgCluster != nil {
		pgCluster.Stop()
	}
	if binPath != "" {
		os.RemoveAll(strings.TrimSuffix(binPath, "/verifyd"))
	}
	os.Exit(code)
}

// pgDatabase returns the DSN of a new database in the shared cluster.
func pgDatabase(t *testing.T, name string) string {
	t.Helper()
	pgOnce.Do(func() { pgCluster, pgErr = pgtest.Start(context.Background()) })
	if pgErr != nil {
		t.Fatalf("starting PostgreSQL (make test-deps installs it): %v", pgErr)
	}
	dsn, err := pgCluster.CreateDatabase(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// pair is two verifyd processes on one PostgreSQL database, as behind a
// load balancer.
type pair struct {
	nodes        [2]*proc
	user, secret string
	dsn          string
	env          []string
}

func startPair(t *testing.T, name string, settings ...string) *pair {
	t.Helper()
	dsn := pgDatabase(t, name)
	key, err := otp.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{user: "app", dsn: dsn, env: []string{"VERIFYD_SECRET_KEY=" + key}}
	out, err := cli(t, "", "accounts", "create", p.user, "--db", dsn)
	if err != nil {
		t.Fatal(err)
	}
	p.secret = strings.TrimSpace(out)
	if len(settings) > 0 {
		if _, err := cli(t, "", append([]string{"accounts", "set", p.user, "--db", dsn}, settings...)...); err != nil {
			t.Fatal(err)
		}
	}
	// Both start at once: their migrations must not race.
	var wg sync.WaitGroup
	for i := range p.nodes {
		wg.Go(func() { p.nodes[i] = startProc(t, p.env, "--db", dsn, "--delivery-lease", "2s") })
	}
	wg.Wait()
	return p
}

// do sends one API request to node i.
func (p *pair) do(t *testing.T, i int, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, p.nodes[i].url+path, strings.NewReader(body))
	req.SetBasicAuth(p.user, p.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// Test numbers have a fixed code, which is how these tests know it without
// the dev inbox.
const (
	testNumber = "447979080999"
	testCode   = "424242"
)

func TestTwoInstancesOnePostgres(t *testing.T) {
	t.Parallel()
	p := startPair(t, "two_instances", "testNumbers="+testNumber+":code="+testCode)

	create := func(t *testing.T, node int) string {
		t.Helper()
		st, v := p.do(t, node, "POST", "/webapi/verify", `{"to": "`+testNumber+`", "from": "Test"}`)
		if st != 202 {
			t.Fatalf("create on node %d: %d %v", node, st, v)
		}
		return v["requestId"].(string)
	}
	validate := func(t *testing.T, node int, id, code string) string {
		st, v := p.do(t, node, "PUT", "/webapi/verify/"+id+"/validate", `{"code": "`+code+`"}`)
		if st == 204 {
			return "204"
		}
		return fmt.Sprint(v["status"])
	}

	t.Run("CreatedOnOneValidatesOnTheOther", func(t *testing.T) {
		id := create(t, 0)
		if got := validate(t, 1, id, testCode); got != "CodeVerified" {
			t.Fatalf("validate on node 1: %s", got)
		}
		if got := validate(t, 0, id, testCode); got != "204" {
			t.Fatalf("validate again on node 0: %s, want 204", got)
		}
	})

	t.Run("ConcurrentRightCodesAcrossNodes", func(t *testing.T) {
		id := create(t, 1)
		var mu sync.Mutex
		counts := map[string]int{}
		var wg sync.WaitGroup
		for i := range 100 {
			wg.Go(func() {
				got := validate(t, i%2, id, testCode)
				mu.Lock()
				counts[got]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if counts["CodeVerified"] != 1 || counts["204"] != 99 {
			t.Fatalf("answers %v, want one CodeVerified and 99 204s", counts)
		}
	})

	t.Run("WrongCodesAcrossNodesLockAfterFive", func(t *testing.T) {
		id := create(t, 0)
		var mu sync.Mutex
		counts := map[string]int{}
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Go(func() {
				got := validate(t, i%2, id, "000000")
				mu.Lock()
				counts[got]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if counts["CodeNotVerified"] != 4 || counts["CodeLocked"] != 1 || counts["204"] != 5 {
			t.Fatalf("answers %v, want 4 CodeNotVerified, 1 CodeLocked, 5 204s", counts)
		}
		if got := validate(t, 1, id, testCode); got != "204" {
			t.Fatalf("the right code after the lock: %s", got)
		}
	})
}

func TestSendLimitsAcrossInstances(t *testing.T) {
	t.Parallel()
	p := startPair(t, "limits", "limit.number=5/10m")
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			st, _ := p.do(t, i%2, "POST", "/webapi/verify", `{"to": "447979080777", "from": "Test"}`)
			mu.Lock()
			counts[st]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts[202] != 5 || counts[400] != 7 {
		t.Fatalf("answers %v, want 5 accepted and 7 throttled across both nodes", counts)
	}
}

// TestKill9OneOfTwo kills one instance under load: the other keeps serving,
// and every request either answered 202 is still delivered, the dead node's
// claims being taken over when their leases run out.
func TestKill9OneOfTwo(t *testing.T) {
	t.Parallel()
	p := startPair(t, "kill_one", "limits=off")
	stop := make(chan struct{})
	results := make(chan []string, 2)
	for i := range p.nodes {
		go func() { results <- load(t, p.nodes[i].url, p.user, p.secret, 4, stop) }()
	}
	time.Sleep(500 * time.Millisecond)
	p.nodes[0].cmd.Process.Kill()
	err := <-p.nodes[0].exited
	p.nodes[0].exited <- err
	time.Sleep(300 * time.Millisecond) // the survivor goes on serving meanwhile
	close(stop)
	ids := append(<-results, <-results...)
	deadline := time.Now().Add(60 * time.Second)
	for _, id := range ids {
		for {
			st, rec := p.do(t, 1, "GET", "/webapi/verify/"+id, "")
			if st != 200 {
				t.Fatalf("request %s answered 202 but GET on the survivor says %d", id, st)
			}
			d, _ := rec["delivery"].(map[string]any)
			if d != nil && d["state"] == "Delivered" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("request %s: delivery %v, want Delivered", id, d)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("%d answered requests across both nodes, all delivered by the survivor", len(ids))
}

// TestDatabaseOutage stops PostgreSQL under a running instance: /readyz
// turns not ready and API requests get a 503 JSON error within a bounded
// time instead of hanging; when the database is back, both recover without
// a restart.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	// Its own cluster: stopping the shared one would break the other tests.
	ctx := context.Background()
	cluster, err := pgtest.Start(ctx)
	if err != nil {
		t.Fatalf("starting PostgreSQL (make test-deps installs it): %v", err)
	}
	t.Cleanup(func() { cluster.Stop() })
	dsn, err := cluster.CreateDatabase(ctx, "outage")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := otp.GenerateKey(rand.Reader)
	out, err := cli(t, "", "accounts", "create", "app", "--db", dsn)
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.TrimSpace(out)
	p := startProc(t, []string{"VERIFYD_SECRET_KEY=" + key}, "--db", dsn)

	get := func(path string) int {
		resp, err := http.Get(p.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	create := func() (int, string, time.Duration) {
		req, _ := http.NewRequest("POST", p.url+"/webapi/verify", strings.NewReader(`{"to": "447979080123", "from": "Test"}`))
		req.SetBasicAuth("app", secret)
		start := time.Now()
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("create during the outage: %v (it must answer, not hang)", err)
		}
		defer resp.Body.Close()
		var body struct{ Code string }
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Code, time.Since(start)
	}
	if st, _, _ := create(); st != 202 {
		t.Fatalf("create before the outage: %d", st)
	}
	if st := get("/readyz"); st != 200 {
		t.Fatalf("/readyz before the outage: %d", st)
	}

	if err := cluster.StopServer(); err != nil {
		t.Fatal(err)
	}
	if st := get("/readyz"); st != 503 {
		t.Fatalf("/readyz during the outage: %d, want 503", st)
	}
	if st := get("/healthz"); st != 200 {
		t.Fatalf("/healthz during the outage: %d, want 200 (the process is up)", st)
	}
	// The first request may meet the pool's dead connection; none may hang.
	st, code, took := create()
	if st != 503 || code != "unavailable" {
		t.Fatalf("create during the outage: %d %q after %v, want 503 unavailable", st, code, took)
	}

	if err := cluster.StartServer(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for get("/readyz") != 200 {
		if time.Now().After(deadline) {
			t.Fatal("/readyz did not recover after the database came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st, _, _ := create(); st != 202 {
		t.Fatalf("create after the outage: %d", st)
	}
}
