package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"verifyd"
	"verifyd/postgres"
	"verifyd/sqlite"
)

const defaultDB = "sqlite:verifyd.db"

// dbFlag is the --db value: sqlite:PATH or postgres://...
type database struct {
	kind string // "sqlite" or "postgres"
	dsn  string // the file path for sqlite
}

func parseDB(s string) (database, error) {
	switch {
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		// A malformed URL is a bad flag, not a database that cannot be
		// reached. url.Parse's error quotes the password: not shown.
		if _, err := url.Parse(s); err != nil {
			return database{}, usagef("--db %s is not a valid URL: want postgres://USER:PASSWORD@HOST:PORT/DB, special characters %%-escaped", redactDSN(s))
		}
		// Open would refuse it too, but only once serve has read its key,
		// and as a failure to open the database rather than a bad flag.
		if err := postgres.CheckDSN(s); err != nil {
			return database{}, usagef("--db: %v", err)
		}
		return database{kind: "postgres", dsn: s}, nil
	case strings.HasPrefix(s, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(s, "sqlite:"), "//")
		if path == "" {
			break
		}
		// The store sets its own connection options and refuses these
		// (see sqlite.Open); refused here they are a bad flag.
		if strings.Contains(path, "?") || strings.HasPrefix(path, ":memory:") || strings.HasPrefix(path, "file:") {
			return database{}, usagef("--db %q: give sqlite:PATH, a plain file path, without options or :memory:", s)
		}
		return database{kind: "sqlite", dsn: path}, nil
	}
	return database{}, usagef("--db must be sqlite:PATH or postgres://..., not %q", redactDSN(s))
}

// passwordParam is a password given as a parameter: in a URL's query
// (password=...&) or a keyword/value string (password = '...' or bare).
var passwordParam = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&]*)`)

// redactDSN hides a password in a connection string for messages: in a
// URL's userinfo, and in any password parameter, which libpq and pgx take
// as well.
func redactDSN(s string) string {
	s = passwordParam.ReplaceAllString(s, "${1}xxxxx")
	at := strings.LastIndex(s, "@")
	scheme := strings.Index(s, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return s
	}
	userinfo := s[scheme+3 : at]
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		return s[:scheme+3] + user + ":xxxxx" + s[at:]
	}
	return s
}

// migrator is a store that owns its schema migrations.
type migrator interface {
	verifyd.Store
	Migrate(ctx context.Context) error
}

// openStore opens the database and applies the migrations.
func openStore(ctx context.Context, db database) (verifyd.Store, error) {
	var s migrator
	var err error
	if db.kind == "postgres" {
		s, err = postgres.Open(ctx, db.dsn)
		if err != nil && verifyd.ErrorCode(err) == verifyd.EUNAVAILABLE {
			return nil, fmt.Errorf("%w; check --db, and that PostgreSQL runs there and lets this user in", err)
		}
	} else {
		s, err = sqlite.Open(ctx, db.dsn)
		if err != nil {
			// The driver says only "unable to open database file" (or
			// "attempt to write a readonly database"), not why.
			if dir := filepath.Dir(db.dsn); !isDir(dir) {
				return nil, fmt.Errorf("%w; the directory %s does not exist: create it, or give --db another path", err, dir)
			}
			if werr := checkWritable(db.dsn); werr != nil {
				return nil, fmt.Errorf("%w; %v: verifyd writes the database and, beside it, its -wal and -shm files; "+
					"give this user the right to, or give --db another path", err, werr)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// checkWritable says why this process cannot write the SQLite database at
// path: the file itself, or new files in its directory. Called only once
// the store failed to open, when no lock of ours is held on the file (to
// close a descriptor of it would drop them).
func checkWritable(path string) error {
	if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
		f.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("this user cannot write %s (%v)", path, pathErr(err))
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".verifyd-probe-")
	if err != nil {
		return fmt.Errorf("cannot create files in %s (%v)", dir, pathErr(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

// pathErr is the system's reason in err, without the path it repeats.
func pathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
