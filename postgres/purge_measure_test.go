package postgres_test

import (
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"verifyd"
)

// TestMeasurePurge times the purge of a backlog of expired rows, for the
// record (VERIFYD_MEASURE_PURGE=1): no assertion on time.
func TestMeasurePurge(t *testing.T) {
	if os.Getenv("VERIFYD_MEASURE_PURGE") == "" {
		t.Skip("set VERIFYD_MEASURE_PURGE=1 to measure")
	}
	const expired, live = 200_000, 1_000_000
	dsn := newDatabase(t)
	s := open(t, dsn)
	a := &verifyd.Account{Name: "m", Created: time.Unix(0, 0)}
	if err := s.CreateAccount(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	old := now.Add(-40 * 24 * time.Hour).UnixMilli()
	exec := func(sql string, args ...any) {
		t.Helper()
		start := time.Now()
		if _, err := conn.Exec(t.Context(), sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		t.Logf("fill %.60s... %v", sql, time.Since(start))
	}
	exec(`INSERT INTO verifications (id, account_id, phone_number, country, number_status, state, attempts, max_attempts, created, valid_until, updated)
		SELECT 'v' || g, $1, '4477' || lpad(g::text, 8, '0'), 'GB', 'On', 'Pending', 0, 5, $2::bigint + g, $2::bigint + g + 600000, $2::bigint + g
		FROM generate_series(1, $3) g`, a.ID, old, expired)
	exec(`INSERT INTO messages (request_id, account_id, to_number, from_id, state, attempts, next_attempt, deadline, lease_until, carrier_id, error, created, updated)
		SELECT 'v' || g, $1, '4477', 'x', 'Delivered', 1, 0, 0, 0, 'c' || g, '', $2, $2 FROM generate_series(1, $3) g`, a.ID, old, expired)
	exec(`INSERT INTO message_parts (carrier_id, request_id, part, state, error, updated)
		SELECT 'c' || g || '-' || p, 'v' || g, p, 'Delivered', '', $1 FROM generate_series(1, $2) g, generate_series(0, 1) p`, old, expired)
	// Expired buckets spread among live ones, as numbers come and go.
	exec(`INSERT INTO limit_buckets (key, tat) SELECT '1:number:' || md5(g::text), CASE WHEN g % 6 = 0 THEN $1::bigint ELSE $2::bigint END
		FROM generate_series(1, $3) g`, now.Add(-time.Hour).UnixNano(), now.Add(time.Hour).UnixNano(), expired+live)
	exec(`INSERT INTO message_parts (carrier_id, request_id, part, state, error, updated)
		SELECT 'o' || g, NULL, 0, 'Delivered', '', $1 FROM generate_series(1, $2) g`, old, expired)
	exec(`INSERT INTO idempotent_requests (account_id, key, body_hash, done, status, created)
		SELECT $1, 'k' || g, '\x00', true, 202, $2 FROM generate_series(1, $3) g`, a.ID, old, expired)
	exec(`INSERT INTO number_failures (account_id, phone_number, failures, last)
		SELECT $1, '4477' || lpad(g::text, 8, '0'), 1, CASE WHEN g % 6 = 0 THEN $2::bigint ELSE $3::bigint END FROM generate_series(1, $4) g`,
		a.ID, old, now.UnixMilli(), expired+live)
	exec("VACUUM ANALYZE")

	// One batch of each of the purge's statements, as the Store runs it.
	bconn, err := pgx.Connect(t.Context(), dsn+"&enable_seqscan=off&enable_hashjoin=off&enable_mergejoin=off&plan_cache_mode=force_generic_plan")
	if err != nil {
		t.Fatal(err)
	}
	defer bconn.Close(t.Context())
	for _, st := range []struct {
		name string
		sql  string
		args []any
	}{
		{"verifications", `DELETE FROM verifications WHERE id IN (
			SELECT id FROM verifications WHERE account_id = $1 AND created < $2 LIMIT $3)`, []any{a.ID, now.Add(-30 * 24 * time.Hour).UnixMilli()}},
		{"limit_buckets", `DELETE FROM limit_buckets WHERE key IN (SELECT key FROM limit_buckets WHERE tat <= $1 LIMIT $2) AND tat <= $1`,
			[]any{now.UnixNano()}},
		{"orphans", `DELETE FROM message_parts WHERE carrier_id IN (
			SELECT carrier_id FROM message_parts WHERE request_id IS NULL AND part = 0 AND updated < $1 LIMIT $2)
			AND request_id IS NULL AND updated < $1`, []any{now.Add(-24 * time.Hour).UnixMilli()}},
		{"idempotency", `DELETE FROM idempotent_requests WHERE (account_id, key) IN (
			SELECT account_id, key FROM idempotent_requests WHERE created < $1 LIMIT $2) AND created < $1`,
			[]any{now.Add(-24 * time.Hour).UnixMilli()}},
		{"number_failures", `DELETE FROM number_failures WHERE (account_id, phone_number) IN (
			SELECT account_id, phone_number FROM number_failures WHERE account_id = $1 AND last <= $2 LIMIT $3)
			AND last <= $2`, []any{a.ID, now.Add(-24 * time.Hour).UnixMilli()}},
	} {
		var (
			batches, rows int
			worst, total  time.Duration
		)
		for {
			start := time.Now()
			tag, err := bconn.Exec(t.Context(), st.sql, append(st.args, 5000)...)
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			d := time.Since(start)
			batches++
			rows += int(tag.RowsAffected())
			total += d
			worst = max(worst, d)
			if tag.RowsAffected() < 5000 {
				break
			}
		}
		t.Logf("%s: %d rows in %d batches, %v in all, %v a batch on average, %v the longest",
			st.name, rows, batches, total.Round(time.Millisecond), (total / time.Duration(batches)).Round(time.Millisecond), worst.Round(time.Millisecond))
	}
}
