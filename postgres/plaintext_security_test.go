package postgres_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"verifyd/delivery"
	"verifyd/inbox"
)

// Codes go through the whole path on PostgreSQL (create on one instance,
// delivery into the dev inbox, wrong and right codes on the other), and
// then no row of any table, nor anything either server logged, holds one:
// not as text, and not as the bytes of a bytea column.
func TestNoCodeInTheDatabaseOrTheLogs(t *testing.T) {
	t.Parallel()
	// Ten-digit codes, so that no timestamp or id matches by chance.
	p := newAPIPair(t, [2]string{"codeLength", "10"}, [2]string{"limits", "off"})
	ctx, stop := context.WithCancel(t.Context())
	w := delivery.New(delivery.Config{
		Store:  p.stores[0],
		Sender: inbox.New(p.stores[0], p.keyring, p.clock),
		Opener: p.keyring,
		Now:    p.clock,
		Poll:   10 * time.Millisecond,
	})
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { stop(); <-done }()

	const sends = 12
	ids := map[string]bool{}
	for i := range sends {
		ids[p.create(i, fmt.Sprintf("4479790803%02d", i))] = true
	}
	codes := map[string]string{}
	for deadline := time.Now().Add(10 * time.Second); len(codes) < sends; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages reached the inbox", len(codes), sends)
		}
		ms, err := p.stores[1].ListInboxMessages(t.Context(), "", 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			text, err := p.keyring.Open(m.RequestID, m.Sealed)
			if err != nil {
				t.Fatal(err)
			}
			code, ok := strings.CutPrefix(string(text), "Your verification code is ")
			if !ok || len(code) != 10 || !ids[m.RequestID] {
				t.Fatalf("inbox message %q for %s", text, m.RequestID)
			}
			codes[m.RequestID] = code
		}
	}
	i := 0
	for id, code := range codes {
		if i++; i%2 == 0 {
			if got := p.validate(1, id, p.wrongCode(id)); got != "CodeNotVerified" {
				t.Fatalf("wrong code: %s", got)
			}
			if got := p.validate(i, id, code); got != "CodeVerified" {
				t.Fatalf("right code: %s", got)
			}
		}
	}

	haystacks := map[string]string{"logs": p.logs.String()}
	conn := connect(t, p.dsn)
	rows, _ := conn.Query(t.Context(), `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 5 {
		t.Fatalf("tables %v, %v", tables, err)
	}
	for _, table := range tables {
		rows, _ := conn.Query(t.Context(), `SELECT t::text FROM `+pgx.Identifier{table}.Sanitize()+` t`)
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		haystacks[table] = strings.Join(texts, "\n")
	}
	for name, h := range haystacks {
		if strings.Contains(h, "verification code is") || strings.Contains(h, hex.EncodeToString([]byte("verification code is"))) {
			t.Errorf("%s holds a message text", name)
		}
		for _, c := range codes {
			if strings.Contains(h, c) || strings.Contains(h, hex.EncodeToString([]byte(c))) {
				t.Errorf("%s holds the code %s", name, c)
			}
		}
	}
}
