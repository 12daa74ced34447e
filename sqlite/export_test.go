package sqlite

import "context"

// WriterQueryRow runs query on the writer's own connection, inside its
// transaction, and scans the one row into dest: settings such as
// synchronous are per connection, so only the writer's says whether its
// commits are durable.
func (s *Store) WriterQueryRow(ctx context.Context, query string, dest ...any) error {
	return s.w.write(ctx, func(t *tx) error { return t.queryRow(query).Scan(dest...) })
}

// WriterPragmas are the writer connection's settings, as name(value).
var WriterPragmas = writerPragmas
