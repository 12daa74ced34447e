package postgres_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"verifyd"
)

// TestPurgeRunsAcrossBatches: the purge walks an account's runs of wrong
// codes in key order, a batch at a time; with ended runs spread among live
// ones over several batches, every ended run goes and every live one stays.
func TestPurgeRunsAcrossBatches(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	s := open(t, dsn)
	a := &verifyd.Account{Name: "runs", Created: time.Unix(0, 0)}
	if err := s.CreateAccount(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	_, cooldown, _ := a.Settings.Failures()
	ended, live := now.Add(-cooldown).UnixMilli(), now.Add(-cooldown).UnixMilli()+1
	const runs = 12_345 // more than two batches
	if _, err := conn.Exec(t.Context(), `INSERT INTO number_failures (account_id, phone_number, failures, last)
		SELECT $1, '4477' || lpad(g::text, 8, '0'), 1, CASE WHEN g % 3 = 0 THEN $2::bigint ELSE $3::bigint END
		FROM generate_series(1, $4) g`, a.ID, ended, live, runs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PurgeVerifications(t.Context(), now); err != nil {
		t.Fatal(err)
	}
	var left, endedLeft int
	if err := conn.QueryRow(t.Context(), `SELECT count(*), count(*) FILTER (WHERE last <= $1) FROM number_failures`, ended).
		Scan(&left, &endedLeft); err != nil {
		t.Fatal(err)
	}
	if want := runs - runs/3; left != want || endedLeft != 0 {
		t.Fatalf("%d runs left (%d of them ended), want the %d live ones only", left, endedLeft, want)
	}
}
