package metrics_test

import (
	"errors"
	"testing"
	"time"

	"verifyd"
)

func TestPurgesAreTimedAndCounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, verifyd.Settings{})

	// Series an operator alerts on exist before the first purge.
	s := e.scrape()
	want(t, s, "verifyd_purge_seconds_count", nil, 0)
	want(t, s, "verifyd_purged_verifications_total", nil, 0)
	want(t, s, "verifyd_purge_failures_total", nil, 0)

	e.m.Purged(120, 1500*time.Millisecond, nil)
	e.m.Purged(0, 20*time.Millisecond, nil)
	e.m.Purged(7, 3*time.Second, errors.New("disk I/O error"))
	s = e.scrape()
	want(t, s, "verifyd_purge_seconds_count", nil, 3)
	want(t, s, "verifyd_purge_seconds_sum", nil, 4.52)
	want(t, s, "verifyd_purge_seconds_bucket", l("le", "2.5"), 2)
	want(t, s, "verifyd_purged_verifications_total", nil, 127)
	want(t, s, "verifyd_purge_failures_total", nil, 1)
}
