package main

import (
	"context"
	"fmt"
)

func migrate(ctx context.Context, args []string, e *env) error {
	fs := e.newFlags("migrate", "migrate [--db sqlite:PATH | --db postgres://...]")
	dbFlag := fs.String("db", defaultDB, "database: sqlite:PATH or postgres://...")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("migrate takes no arguments, got %q; give the database as --db", pos[0])
	}
	db, err := parseDB(*dbFlag)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, db)
	if err != nil {
		return fmt.Errorf("migrating %s: %w", redactDSN(*dbFlag), err)
	}
	fmt.Fprintln(e.stdout, "database is up to date")
	return store.Close()
}
