package postgres_test

import (
	"testing"

	"verifyd"
)

// TestCreateBehindOneStuckOnABucketIsTried: two creates with one request
// id in a group, the first charging a bucket another session holds locked,
// the second another bucket. The second waits for the next group, to meet
// the first's outcome as it would one at a time: the first fails (503,
// nothing written), so the second is committed. The committer failed it
// unrun with the first's lock timeout, as if the row held were named by
// the request id; the row held was the first's bucket, which the second
// does not charge.
func TestCreateBehindOneStuckOnABucketIsTried(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, a, held, free, _ := heldBucket(t)
	first, m1 := pending(a, 1)
	second, m2 := pending(a, 1)
	errs := s.CommitGroup(ctx, []*verifyd.Verification{first, second}, []*verifyd.Message{m1, m2},
		[][]verifyd.Limit{{held}, {free}})
	if verifyd.ErrorCode(errs[0]) != verifyd.EUNAVAILABLE {
		t.Errorf("create charging the locked bucket: %v, want EUNAVAILABLE", errs[0])
	}
	if errs[1] != nil {
		t.Errorf("create with its request id charging another bucket: %v, want it committed", errs[1])
	}
	if _, err := s.FindVerification(ctx, a.ID, second.ID); (err == nil) != (errs[1] == nil) {
		t.Errorf("second create answered %v, stored: %v", errs[1], err == nil)
	}
}
