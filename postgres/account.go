package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"verifyd"
)

const accountColumns = "id, name, secret_digest, password_hash, disabled, settings, created"

// CreateAccount inserts a and sets its ID; ECONFLICT if the name is taken.
func (s *Store) CreateAccount(ctx context.Context, a *verifyd.Account) error {
	settings, err := json.Marshal(a.Settings)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	var id int64
	err = s.do(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `INSERT INTO accounts (name, secret_digest, password_hash, disabled, settings, created)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			a.Name, a.SecretDigest, a.PasswordHash, a.Disabled, string(settings), ms(a.Created)).Scan(&id)
	})
	if verifyd.ErrorCode(err) == verifyd.ECONFLICT {
		return verifyd.Errorf(verifyd.ECONFLICT, "an account named %q already exists", a.Name)
	}
	if err != nil {
		return err
	}
	a.ID = id
	return nil
}

// FindAccountByName returns ENOTFOUND for an unknown name.
func (s *Store) FindAccountByName(ctx context.Context, name string) (*verifyd.Account, error) {
	var a *verifyd.Account
	err := s.do(ctx, func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, "SELECT "+accountColumns+" FROM accounts WHERE name = $1", name)
		var err error
		a, err = pgx.CollectExactlyOneRow(rows, scanAccount)
		return err
	})
	if verifyd.ErrorCode(err) == verifyd.ENOTFOUND {
		return nil, verifyd.Errorf(verifyd.ENOTFOUND, "account not found")
	}
	return a, err
}

// ListAccounts returns every account, ordered by name byte by byte (as
// SQLite and Go sort), whatever the database's collation.
func (s *Store) ListAccounts(ctx context.Context) ([]*verifyd.Account, error) {
	var out []*verifyd.Account
	err := s.do(ctx, func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, "SELECT "+accountColumns+` FROM accounts ORDER BY name COLLATE "C"`)
		var err error
		out, err = pgx.CollectRows(rows, scanAccount)
		return err
	})
	return out, err
}

// UpdateAccount writes a's credential, Disabled flag and Settings.
func (s *Store) UpdateAccount(ctx context.Context, a *verifyd.Account) error {
	settings, err := json.Marshal(a.Settings)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return s.do(ctx, func(ctx context.Context) error {
		tag, err := s.pool.Exec(ctx, `UPDATE accounts SET secret_digest = $2, password_hash = $3, disabled = $4, settings = $5
			WHERE id = $1`, a.ID, a.SecretDigest, a.PasswordHash, a.Disabled, string(settings))
		if err == nil && tag.RowsAffected() == 0 {
			return verifyd.Errorf(verifyd.ENOTFOUND, "account not found")
		}
		return err
	})
}

func scanAccount(row pgx.CollectableRow) (*verifyd.Account, error) {
	var (
		a        verifyd.Account
		settings []byte
		created  int64
	)
	if err := row.Scan(&a.ID, &a.Name, &a.SecretDigest, &a.PasswordHash, &a.Disabled, &settings, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(settings, &a.Settings); err != nil {
		return nil, fmt.Errorf("account %d settings: %w", a.ID, err)
	}
	a.Created = fromMS(created)
	return &a, nil
}
