package postgres

import (
	"bytes"
	"context"

	"verifyd"
)

// BindServerKey records the server key's fingerprint, or compares it with
// the one recorded; see verifyd.KeyStore. The read is a statement of its
// own: under READ COMMITTED it sees the row another instance's insert,
// which this one's waited for, committed.
func (s *Store) BindServerKey(ctx context.Context, fingerprint []byte, replace bool) error {
	return s.do(ctx, func(ctx context.Context) error {
		if replace {
			_, err := s.pool.Exec(ctx, `INSERT INTO server_key (id, fingerprint) VALUES (1, $1)
				ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint`, fingerprint)
			return err
		}
		if _, err := s.pool.Exec(ctx, `INSERT INTO server_key (id, fingerprint) VALUES (1, $1)
			ON CONFLICT (id) DO NOTHING`, fingerprint); err != nil {
			return err
		}
		var have []byte
		if err := s.pool.QueryRow(ctx, "SELECT fingerprint FROM server_key WHERE id = 1").Scan(&have); err != nil {
			return err
		}
		if !bytes.Equal(have, fingerprint) {
			return verifyd.Errorf(verifyd.ECONFLICT, "the database was written under another server key")
		}
		return nil
	})
}
