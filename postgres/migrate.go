package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Advisory lock keys, one per job that must run on one instance at a time.
// They share the database's key space with anything else that uses
// advisory locks, hence the unlikely values ("verifyd" and a number).
const (
	migrateLockKey     int64 = 0x7665726966796401
	maintenanceLockKey int64 = 0x7665726966796402
)

// migration is one numbered file of migrations/.
type migration struct {
	version int
	name    string
	sql     string
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// migrations lists the embedded migrations in order, refusing a misnamed or
// duplicated number: a gap in what is applied would go unnoticed.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	seen := map[int]string{}
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("postgres: migration %q is not named NNNN_name.sql", e.Name())
		}
		version, _ := strconv.Atoi(m[1])
		if other, dup := seen[version]; dup {
			return nil, fmt.Errorf("postgres: migrations %q and %q share a number", other, e.Name())
		}
		seen[version] = e.Name()
		sql, err := fs.ReadFile(migrationFiles, "migrations/"+e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: version, name: m[2], sql: string(sql)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// Migrate applies the migrations the database has not seen yet, each in its
// own transaction. Instances that start at once take turns on an advisory
// lock, so each migration runs once; the others find it applied. It waits
// for another instance's migration as long as ctx allows.
func (s *Store) Migrate(ctx context.Context) error {
	all, err := migrations()
	if err != nil {
		return err
	}
	acquireCtx, cancel := s.bound(ctx)
	conn, err := s.pool.Acquire(acquireCtx)
	cancel()
	if err != nil {
		return s.translate(acquireCtx, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
		return s.translate(ctx, err)
	}
	defer unlock(ctx, conn, migrateLockKey)

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY,
		name    text    NOT NULL,
		applied bigint  NOT NULL
	)`); err != nil {
		return s.translate(ctx, err)
	}
	applied := map[int]bool{}
	rows, _ := conn.Query(ctx, "SELECT version FROM schema_migrations")
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return s.translate(ctx, err)
	}
	for _, v := range versions {
		applied[v] = true
	}
	for _, m := range all {
		if applied[m.version] {
			continue
		}
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name, applied) VALUES ($1, $2, $3)",
				m.version, m.name, ms(time.Now()))
			return err
		}); err != nil {
			return fmt.Errorf("postgres: migration %04d_%s: %w", m.version, m.name, s.translate(ctx, err))
		}
	}
	return nil
}

// unlock releases a session advisory lock. When that fails the connection
// is closed instead, which releases it too, so it never goes back to the
// pool still holding the lock.
func unlock(ctx context.Context, conn *pgxpool.Conn, key int64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var released bool
	if err := conn.QueryRow(ctx, "SELECT pg_advisory_unlock($1)", key).Scan(&released); err != nil || !released {
		conn.Conn().Close(ctx)
	}
}

// TryMaintenance runs fn if no other instance is running maintenance, and
// reports whether it ran. It holds a session-level advisory lock on a
// connection of its own while fn runs (fn uses the Store as usual), and
// releases it after. If that connection dies while fn runs, the lock goes
// with it and another instance may start too: maintenance must be safe to
// overlap, only wasteful.
func (s *Store) TryMaintenance(ctx context.Context, fn func(context.Context) error) (ran bool, err error) {
	lockCtx, cancel := s.bound(ctx)
	defer cancel()
	conn, err := s.pool.Acquire(lockCtx)
	if err != nil {
		return false, s.translate(lockCtx, err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(lockCtx, "SELECT pg_try_advisory_lock($1)", maintenanceLockKey).Scan(&locked); err != nil {
		return false, s.translate(lockCtx, err)
	}
	if !locked {
		return false, nil
	}
	defer unlock(ctx, conn, maintenanceLockKey)
	return true, fn(ctx)
}
