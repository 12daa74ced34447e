package postgres

import (
	"context"

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

// ParseConfig is the configuration Open would connect to dsn with.
func ParseConfig(dsn string) (*pgxpool.Config, error) {
	return parseConfig(dsn, options{timeout: DefaultTimeout})
}
