package sqlite

import (
	"context"

	"verifyd"
)

// AddInboxMessages stores messages and sets their IDs.
func (s *Store) AddInboxMessages(ctx context.Context, msgs []*verifyd.InboxMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	ids := make([]int64, len(msgs))
	err := s.w.write(ctx, func(t *tx) error {
		for i, m := range msgs {
			if err := t.queryRow(`INSERT INTO inbox_messages (request_id, to_number, from_id, sealed, created)
				VALUES (?, ?, ?, ?, ?) RETURNING id`,
				m.RequestID, m.To, m.From, m.Sealed, ms(m.Created)).Scan(&ids[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, m := range msgs {
		m.ID = ids[i]
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
	rows, err := s.rdb.QueryContext(ctx, query, args...)
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
