package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"verifyd"
)

// CommitGroup commits the creates i of vs, ms and limits as one group, as
// the committers do with creates that arrive together, and returns each
// one's outcome.
func (s *Store) CommitGroup(ctx context.Context, vs []*verifyd.Verification, ms []*verifyd.Message, limits [][]verifyd.Limit) []error {
	group := make([]*call[createArgs], len(vs))
	for i := range vs {
		group[i] = &call[createArgs]{ctx: ctx, arg: createArgs{v: vs[i], m: ms[i], limits: limits[i]}, done: make(chan struct{})}
	}
	s.creates.commitGroup(s, group)
	errs := make([]error, len(group))
	for i, r := range group {
		<-r.done
		errs[i] = r.err
	}
	return errs
}

// ValidateGroup runs the validates (accountID, ids[i], fns[i]) as one
// group, as the committer does with validates that arrive together, and
// returns each one's outcome.
func (s *Store) ValidateGroup(ctx context.Context, accountID int64, ids []string, fns []func(*verifyd.Verification) error) []error {
	group := make([]*call[*validateArgs], len(ids))
	for i := range ids {
		group[i] = &call[*validateArgs]{ctx: ctx, arg: &validateArgs{accountID: accountID, id: ids[i], fn: fns[i]}, done: make(chan struct{})}
	}
	s.validates.commitGroup(s, group)
	errs := make([]error, len(group))
	for i, c := range group {
		<-c.done
		errs[i] = c.err
	}
	return errs
}

// ParseConfig is the configuration Open would connect to dsn with.
func ParseConfig(dsn string) (*pgxpool.Config, error) {
	return parseConfig(dsn, options{timeout: DefaultTimeout})
}

// SetLockedWait sets how long grouped writes wait for a row lock, for a
// test whose race must stay open longer than the default second on a
// loaded machine. Set it before the Store is used.
func (s *Store) SetLockedWait(d time.Duration) { s.lockWait = d }
