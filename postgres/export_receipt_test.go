package postgres

import (
	"context"
	"errors"

	"verifyd"
)

// RecordReceiptGroup records rs as one group, as the committers do with
// receipts that arrive together, so that a test can tell which statement
// holds which receipts. It returns the group's error, or else the receipts'
// own, joined.
func (s *Store) RecordReceiptGroup(ctx context.Context, rs []verifyd.Receipt) error {
	group := make([]*call[verifyd.Receipt], len(rs))
	for i, r := range rs {
		group[i] = &call[verifyd.Receipt]{ctx: ctx, arg: r, done: make(chan struct{})}
	}
	errs, err := s.receiptTx(ctx, group)
	if err != nil {
		return err
	}
	return errors.Join(errs...)
}

// CommitReceiptGroup commits rs as one group through the committers' path
// (the Store's timeout, retries, a call's error translated), and returns
// each receipt's outcome.
func (s *Store) CommitReceiptGroup(ctx context.Context, rs []verifyd.Receipt) []error {
	group := make([]*call[verifyd.Receipt], len(rs))
	for i, r := range rs {
		group[i] = &call[verifyd.Receipt]{ctx: ctx, arg: r, done: make(chan struct{})}
	}
	s.receipts.commitGroup(s, group)
	errs := make([]error, len(group))
	for i, c := range group {
		<-c.done
		errs[i] = c.err
	}
	return errs
}
