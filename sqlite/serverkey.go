package sqlite

import (
	"bytes"
	"context"

	"verifyd"
)

// BindServerKey records the server key's fingerprint, or compares it with
// the one recorded; see verifyd.KeyStore. The single writer makes the
// insert and the read one step.
func (s *Store) BindServerKey(ctx context.Context, fingerprint []byte, replace bool) error {
	return s.w.write(ctx, func(t *tx) error {
		if replace {
			_, err := t.execOnce(`INSERT INTO server_key (id, fingerprint) VALUES (1, ?)
				ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint`, fingerprint)
			return err
		}
		if _, err := t.execOnce(`INSERT INTO server_key (id, fingerprint) VALUES (1, ?)
			ON CONFLICT (id) DO NOTHING`, fingerprint); err != nil {
			return err
		}
		var have []byte
		if err := t.queryRow("SELECT fingerprint FROM server_key WHERE id = 1").Scan(&have); err != nil {
			return err
		}
		if !bytes.Equal(have, fingerprint) {
			return verifyd.Errorf(verifyd.ECONFLICT, "the database was written under another server key")
		}
		return nil
	})
}
