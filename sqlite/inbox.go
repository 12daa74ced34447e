package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"verifyd"
)

// AddInboxMessages stores messages and sets their IDs. The inbox sender
// calls it once per message from many goroutines at a time, so the calls
// waiting for the writer together are stored with one statement.
func (s *Store) AddInboxMessages(ctx context.Context, msgs []*verifyd.InboxMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	a := &inboxAdd{args: make([]any, 0, inboxColumns*len(msgs)), ids: make([]int64, len(msgs))}
	for _, m := range msgs {
		a.args = append(a.args, m.RequestID, m.To, m.From, m.Sealed, ms(m.Created))
	}
	err := s.w.writeBulk(ctx, inboxBulk, a, func(t *tx) error { return addInbox(t, []*inboxAdd{a}) })
	if err != nil {
		return err
	}
	for i, m := range msgs {
		m.ID = a.ids[i]
	}
	return nil
}

// inboxColumns is how many values a message takes in addInbox.
const inboxColumns = 5

// inboxAdd is one AddInboxMessages call: its messages as statement
// arguments, and the ids they get.
type inboxAdd struct {
	args []any
	ids  []int64
}

var inboxBulk = &bulk{run: func(t *tx, ops []*op) error {
	adds := make([]*inboxAdd, len(ops))
	for i, o := range ops {
		adds[i] = o.arg.(*inboxAdd)
	}
	return addInbox(t, adds)
}}

// addInbox inserts the messages of adds in one go. Ids are given in
// insertion order (AUTOINCREMENT only grows), which is the order of the
// rows, so the sorted ids are the rows' ids in turn.
func addInbox(t *tx, adds []*inboxAdd) error {
	args, n := adds[0].args, len(adds[0].ids)
	if len(adds) > 1 {
		args = nil
		for _, a := range adds {
			args = append(args, a.args...)
			n += len(a.ids)
		}
		n -= len(adds[0].ids)
	}
	ids := make([]int64, 0, n)
	err := t.queryRows(`INSERT INTO inbox_messages (request_id, to_number, from_id, sealed, created)
		VALUES /*rows*/ RETURNING id`, inboxColumns, args, func(rows *sql.Rows) error {
		var id int64
		err := rows.Scan(&id)
		ids = append(ids, id)
		return err
	})
	if err != nil {
		return err
	}
	if len(ids) != n {
		return fmt.Errorf("sqlite: inbox insert returned %d ids for %d messages", len(ids), n)
	}
	slices.Sort(ids)
	for _, a := range adds {
		ids = ids[copy(a.ids, ids):]
	}
	return nil
}

// ListInboxMessages returns up to limit messages to the number to ("" for
// all), newest first; a limit of zero or less means no limit.
func (s *Store) ListInboxMessages(ctx context.Context, to string, limit int) ([]*verifyd.InboxMessage, error) {
	if limit <= 0 {
		limit = -1 // SQLite's "no limit"
	}
	// Each message with its verification's code MAC and number, by which
	// the inbox tells which digits of the text are the code; NULL once the
	// verification is purged.
	const columns = `SELECT i.id, i.request_id, i.to_number, i.from_id, i.sealed, i.created, v.code_mac, v.phone_number
		FROM inbox_messages i LEFT JOIN verifications v ON v.id = i.request_id `
	query, args := columns+"ORDER BY i.created DESC, i.id DESC LIMIT ?", []any{limit}
	if to != "" {
		query, args = columns+"WHERE i.to_number = ? ORDER BY i.created DESC, i.id DESC LIMIT ?", []any{to, limit}
	}
	stmt, err := s.read(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*verifyd.InboxMessage
	for rows.Next() {
		var (
			m       verifyd.InboxMessage
			created int64
			number  sql.NullString
		)
		if err := rows.Scan(&m.ID, &m.RequestID, &m.To, &m.From, &m.Sealed, &created, &m.CodeMAC, &number); err != nil {
			return nil, err
		}
		m.Created, m.PhoneNumber = fromMS(created), number.String
		out = append(out, &m)
	}
	return out, rows.Err()
}
