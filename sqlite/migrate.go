package sqlite

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// migrations are the schema's numbered steps, NNNN_name.sql, applied in
// order and each once.
//
//go:embed migrations/*.sql
var migrations embed.FS

// migration is one numbered schema step.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded steps in version order.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	seen := map[int]string{}
	for _, name := range names {
		base := strings.TrimSuffix(path.Base(name), ".sql")
		num, label, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || len(num) != 4 || version < 1 || label == "" {
			return nil, fmt.Errorf("sqlite: migration %s is not named NNNN_name.sql", name)
		}
		if other, dup := seen[version]; dup {
			return nil, fmt.Errorf("sqlite: migrations %s and %s share version %d", other, name, version)
		}
		seen[version] = name
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: version, name: base, sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// Migrate applies the migrations the database has not had yet and records
// each. All of it is one write transaction, so two processes migrating at
// once take turns and the second finds nothing left to do; a failing step
// leaves the schema as it was.
func (s *Store) Migrate(ctx context.Context) error {
	steps, err := loadMigrations(migrations)
	if err != nil {
		return err
	}
	return s.migrate(ctx, steps)
}

func (s *Store) migrate(ctx context.Context, steps []migration) error {
	known := map[int]bool{}
	for _, m := range steps {
		known[m.version] = true
	}
	return s.w.write(ctx, func(t *tx) error {
		if _, err := t.execOnce(`CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY,
			name    TEXT NOT NULL
		) STRICT`); err != nil {
			return fmt.Errorf("sqlite: migrate: %w", err)
		}
		applied := map[int]bool{}
		rows, err := t.query("SELECT version FROM schema_migrations")
		if err != nil {
			return fmt.Errorf("sqlite: migrate: %w", err)
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return fmt.Errorf("sqlite: migrate: %w", err)
			}
			applied[v] = true
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("sqlite: migrate: %w", err)
		}
		for v := range applied {
			if !known[v] {
				return fmt.Errorf("sqlite: the database has schema version %d, which this verifyd does not know: run a newer verifyd", v)
			}
		}
		for _, m := range steps {
			if applied[m.version] {
				continue
			}
			if _, err := t.execOnce(m.sql); err != nil {
				return fmt.Errorf("sqlite: migration %s: %w", m.name, err)
			}
			if _, err := t.execOnce("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", m.version, m.name); err != nil {
				return fmt.Errorf("sqlite: migration %s: %w", m.name, err)
			}
		}
		return nil
	})
}
