package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"verifyd"
)

const accountColumns = "id, name, secret_digest, password_hash, disabled, settings, created"

// CreateAccount inserts a and sets its ID; ECONFLICT if the name is taken.
func (s *Store) CreateAccount(ctx context.Context, a *verifyd.Account) error {
	settings, err := json.Marshal(a.Settings)
	if err != nil {
		return fmt.Errorf("sqlite: account settings: %w", err)
	}
	var id int64
	err = s.w.write(ctx, func(t *tx) error {
		err := t.queryRow(`INSERT INTO accounts (name, secret_digest, password_hash, disabled, settings, created)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			a.Name, a.SecretDigest, a.PasswordHash, a.Disabled, string(settings), ms(a.Created)).Scan(&id)
		if isConflict(err) {
			return verifyd.Errorf(verifyd.ECONFLICT, "an account with that name exists")
		}
		return err
	})
	if err != nil {
		return err
	}
	a.ID = id
	return nil
}

// FindAccountByName returns ENOTFOUND for an unknown name.
func (s *Store) FindAccountByName(ctx context.Context, name string) (*verifyd.Account, error) {
	a, err := scanAccount(s.rdb.QueryRowContext(ctx, "SELECT "+accountColumns+" FROM accounts WHERE name = ?", name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("account")
	}
	return a, err
}

// ListAccounts returns every account, ordered by name.
func (s *Store) ListAccounts(ctx context.Context) ([]*verifyd.Account, error) {
	rows, err := s.rdb.QueryContext(ctx, "SELECT "+accountColumns+" FROM accounts ORDER BY name")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*verifyd.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// UpdateAccount writes a's credential, Disabled flag and Settings;
// ENOTFOUND if a.ID is unknown.
func (s *Store) UpdateAccount(ctx context.Context, a *verifyd.Account) error {
	settings, err := json.Marshal(a.Settings)
	if err != nil {
		return fmt.Errorf("sqlite: account settings: %w", err)
	}
	return s.w.write(ctx, func(t *tx) error {
		res, err := t.exec(`UPDATE accounts SET secret_digest = ?, password_hash = ?, disabled = ?, settings = ?
			WHERE id = ?`, a.SecretDigest, a.PasswordHash, a.Disabled, string(settings), a.ID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err == nil && n == 0 {
			err = notFound("account")
		}
		return err
	})
}

func scanAccount(r rowScanner) (*verifyd.Account, error) {
	var (
		a        verifyd.Account
		settings string
		created  int64
	)
	if err := r.Scan(&a.ID, &a.Name, &a.SecretDigest, &a.PasswordHash, &a.Disabled, &settings, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(settings), &a.Settings); err != nil {
		return nil, fmt.Errorf("sqlite: settings of account %d: %w", a.ID, err)
	}
	a.Created = fromMS(created)
	return &a, nil
}
