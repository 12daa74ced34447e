package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"verifyd"
)

// AddInboxMessages stores messages and sets their IDs, in one round trip
// and one transaction.
func (s *Store) AddInboxMessages(ctx context.Context, msgs []*verifyd.InboxMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	ids := make([]int64, len(msgs))
	err := s.do(ctx, func(ctx context.Context) error {
		b := &pgx.Batch{}
		for i, m := range msgs {
			b.Queue(`INSERT INTO inbox_messages (request_id, to_number, from_id, sealed, created)
				VALUES ($1, $2, $3, $4, $5) RETURNING id`, m.RequestID, m.To, m.From, m.Sealed, ms(m.Created)).
				QueryRow(func(row pgx.Row) error { return row.Scan(&ids[i]) })
		}
		return s.pool.SendBatch(ctx, b).Close()
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
	var max *int // LIMIT NULL is no limit
	if limit > 0 {
		max = &limit
	}
	const columns = "SELECT id, request_id, to_number, from_id, sealed, created FROM inbox_messages "
	var out []*verifyd.InboxMessage
	err := s.do(ctx, func(ctx context.Context) error {
		var rows pgx.Rows
		if to == "" {
			rows, _ = s.pool.Query(ctx, columns+"ORDER BY created DESC, id DESC LIMIT $1", max)
		} else {
			rows, _ = s.pool.Query(ctx, columns+"WHERE to_number = $1 ORDER BY created DESC, id DESC LIMIT $2", to, max)
		}
		var err error
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*verifyd.InboxMessage, error) {
			var (
				m       verifyd.InboxMessage
				created int64
			)
			if err := row.Scan(&m.ID, &m.RequestID, &m.To, &m.From, &m.Sealed, &created); err != nil {
				return nil, err
			}
			m.Created = fromMS(created)
			return &m, nil
		})
		return err
	})
	return out, err
}
