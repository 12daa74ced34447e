package main

import (
	"context"
	"fmt"
)

func migrate(ctx context.Context, args []string, e *env) error {
	fs := e.newFlags("migrate", "migrate [--db sqlite:PATH | --db postgres://...]")
	dbFlag := fs.String("db", defaultDB, "database: sqlite:PATH or postgres://...")
	if _, err := e.parse(fs, args); err != nil {
		return err
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
