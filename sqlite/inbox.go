package sqlite

import (
	"context"
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
	a := &inboxAdd{msgs: msgs, ids: make([]int64, len(msgs))}
	r := newRows(len(msgs) * 256)
	for _, m := range msgs {
		r.row().str("r", m.RequestID).str("t", m.To).str("f", m.From).blob("s", m.Sealed).int("c", ms(m.Created))
	}
	var ok bool
	a.rows, ok = r.text()
	var err error
	if ok {
		err = s.w.writeBulk(ctx, inboxBulk, a, func(t *tx) error { return addInbox(t, []*inboxAdd{a}) })
	} else {
		err = s.w.write(ctx, a.addEach)
	}
	if err != nil {
		return err
	}
	for i, m := range msgs {
		m.ID = a.ids[i]
	}
	return nil
}

// inboxAdd is one AddInboxMessages call: its messages as rows, and the ids
// they get.
type inboxAdd struct {
	msgs []*verifyd.InboxMessage
	rows string // the JSON rows of msgs
	ids  []int64
}

var inboxBulk = &bulk{run: func(t *tx, ops []*op) error {
	adds := make([]*inboxAdd, len(ops))
	for i, o := range ops {
		adds[i] = o.arg.(*inboxAdd)
	}
	return addInbox(t, adds)
}}

// addInbox inserts the messages of adds with one statement. Ids are given
// in insertion order (AUTOINCREMENT only grows), which is the order of the
// rows, so the sorted ids are the rows' ids in turn.
func addInbox(t *tx, adds []*inboxAdd) error {
	rows := adds[0].rows
	if len(adds) > 1 {
		rows = joinRows(len(adds), func(i int) string { return adds[i].rows })
	}
	res, err := t.query(`INSERT INTO inbox_messages (request_id, to_number, from_id, sealed, created)
		SELECT value ->> 'r', value ->> 't', value ->> 'f', unhex(value ->> 's'), value ->> 'c'
		FROM jsonb_each(?) WHERE true ORDER BY key RETURNING id`, rows)
	if err != nil {
		return err
	}
	defer res.Close()
	n := 0
	for _, a := range adds {
		n += len(a.ids)
	}
	ids := make([]int64, 0, n)
	for res.Next() {
		var id int64
		if err := res.Scan(&id); err != nil {
			return err
		}
		ids = append(ids, id)
	}
	if err := res.Err(); err != nil {
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

// addEach inserts the messages one statement each, for texts that cannot
// go through JSON.
func (a *inboxAdd) addEach(t *tx) error {
	for i, m := range a.msgs {
		if err := t.queryRow(`INSERT INTO inbox_messages (request_id, to_number, from_id, sealed, created)
			VALUES (?, ?, ?, ?, ?) RETURNING id`,
			m.RequestID, m.To, m.From, m.Sealed, ms(m.Created)).Scan(&a.ids[i]); err != nil {
			return err
		}
	}
	return nil
}

// ListInboxMessages returns up to limit messages to the number to ("" for
// all), newest first; a limit of zero or less means no limit.
func (s *Store) ListInboxMessages(ctx context.Context, to string, limit int) ([]*verifyd.InboxMessage, error) {
	if limit <= 0 {
		limit = -1 // SQLite's "no limit"
	}
	const columns = "SELECT id, request_id, to_number, from_id, sealed, created FROM inbox_messages "
	query, args := columns+"ORDER BY created DESC, id DESC LIMIT ?", []any{limit}
	if to != "" {
		query, args = columns+"WHERE to_number = ? ORDER BY created DESC, id DESC LIMIT ?", []any{to, limit}
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
		)
		if err := rows.Scan(&m.ID, &m.RequestID, &m.To, &m.From, &m.Sealed, &created); err != nil {
			return nil, err
		}
		m.Created = fromMS(created)
		out = append(out, &m)
	}
	return out, rows.Err()
}
