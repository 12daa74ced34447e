package pgtest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// Main runs a test binary's tests against one cluster: it starts the
// cluster, hands it to use (which keeps it for the tests), runs the tests,
// stops the cluster and removes its directory whatever the tests did, and
// exits. Call it from TestMain:
//
//	var cluster *pgtest.Cluster
//
//	func TestMain(m *testing.M) {
//		pgtest.Main(m, func(c *pgtest.Cluster) { cluster = c })
//	}
//
// A test binary that panics or times out never reaches the stop, but its
// server still goes (see the package comment).
func Main(m *testing.M, use func(*Cluster)) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c, err := Start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	use(c)
	code := m.Run()
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
