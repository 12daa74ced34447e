package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"verifyd"
)

// Inbox messages are added in groups (see groups): the dev sender adds
// each message on its own, from as many goroutines as messages in flight.
const (
	maxInboxGroup   = 256
	inboxCommitters = 2
)

func (s *Store) newInboxGroups() *groups[[]*verifyd.InboxMessage] {
	return &groups[[]*verifyd.InboxMessage]{max: maxInboxGroup, committers: inboxCommitters, commit: s.addInboxTx}
}

// AddInboxMessages stores messages and sets their IDs, in one transaction
// that other calls waiting at once may share.
func (s *Store) AddInboxMessages(ctx context.Context, msgs []*verifyd.InboxMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	return s.inbox.do(s, ctx, msgs)
}

// addInboxMessages inserts the rows in the order given, taking their ids
// from the table's sequence first, and returns the ids in that order.
const addInboxMessages = `WITH u AS (
	SELECT nextval(pg_get_serial_sequence('inbox_messages', 'id')) AS id, u.*
	FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bigint[])
		WITH ORDINALITY AS u(request_id, to_number, from_id, sealed, created, i)
), ins AS (
	INSERT INTO inbox_messages (id, request_id, to_number, from_id, sealed, created) OVERRIDING SYSTEM VALUE
	SELECT id, request_id, to_number, from_id, sealed, created FROM u
)
SELECT id FROM u ORDER BY i`

// addInboxTx adds a group's messages in one statement.
func (s *Store) addInboxTx(ctx context.Context, group []*call[[]*verifyd.InboxMessage]) ([]error, error) {
	var (
		reqs, tos, froms []string
		sealed           [][]byte
		created          []int64
	)
	for _, c := range group {
		for _, m := range c.arg {
			reqs, tos, froms = append(reqs, m.RequestID), append(tos, m.To), append(froms, m.From)
			sealed, created = append(sealed, m.Sealed), append(created, ms(m.Created))
		}
	}
	ids := make([]int64, 0, len(reqs))
	rows, _ := s.pool.Query(ctx, addInboxMessages, reqs, tos, froms, sealed, created)
	var id int64
	if _, err := pgx.ForEachRow(rows, []any{&id}, func() error {
		ids = append(ids, id)
		return nil
	}); err != nil {
		return nil, err
	}
	if len(ids) != len(reqs) {
		return nil, fmt.Errorf("inserted %d inbox messages, got %d ids back", len(reqs), len(ids))
	}
	for _, c := range group {
		for _, m := range c.arg {
			m.ID, ids = ids[0], ids[1:]
		}
	}
	return make([]error, len(group)), nil
}

// ListInboxMessages returns up to limit messages to the number to ("" for
// all), newest first; a limit of zero or less means no limit.
func (s *Store) ListInboxMessages(ctx context.Context, to string, limit int) ([]*verifyd.InboxMessage, error) {
	var max *int // LIMIT NULL is no limit
	if limit > 0 {
		max = &limit
	}
	// Each message with its verification's code MAC and number, by which
	// the inbox tells which digits of the text are the code; NULL once the
	// verification is purged.
	const columns = `SELECT i.id, i.request_id, i.to_number, i.from_id, i.sealed, i.created, v.code_mac, v.phone_number
		FROM inbox_messages i LEFT JOIN verifications v ON v.id = i.request_id `
	var out []*verifyd.InboxMessage
	err := s.do(ctx, func(ctx context.Context) error {
		var rows pgx.Rows
		if to == "" {
			rows, _ = s.pool.Query(ctx, columns+"ORDER BY i.created DESC, i.id DESC LIMIT $1", max)
		} else {
			rows, _ = s.pool.Query(ctx, columns+"WHERE i.to_number = $1 ORDER BY i.created DESC, i.id DESC LIMIT $2", to, max)
		}
		var err error
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*verifyd.InboxMessage, error) {
			var (
				m       verifyd.InboxMessage
				created int64
				number  *string
			)
			if err := row.Scan(&m.ID, &m.RequestID, &m.To, &m.From, &m.Sealed, &created, &m.CodeMAC, &number); err != nil {
				return nil, err
			}
			m.Created = fromMS(created)
			if number != nil {
				m.PhoneNumber = *number
			}
			return &m, nil
		})
		return err
	})
	return out, err
}
