package postgres

import (
	"context"

	"verifyd"
)

// RecordReceiptGroup records rs as one group, as the committers do with
// receipts that arrive together, so that a test can tell which statement
// holds which receipts.
func (s *Store) RecordReceiptGroup(ctx context.Context, rs []verifyd.Receipt) error {
	group := make([]*call[verifyd.Receipt], len(rs))
	for i, r := range rs {
		group[i] = &call[verifyd.Receipt]{ctx: ctx, arg: r, done: make(chan struct{})}
	}
	_, err := s.receiptTx(ctx, group)
	return err
}
