package pgtest

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"
)

// ticksPerSecond is USER_HZ, 100 on every Linux these tests run on.
const ticksPerSecond = 100

// CPUTime is the CPU time the running server has used so far: the
// postmaster, its live children (the sessions, the WAL writer, the
// checkpointer, autovacuum) and the children it has reaped. A benchmark
// reads it before and after and divides by its operations: the database's
// own cost per operation, which on a machine the client shares holds up
// where throughput does not. It reads /proc, so it is Linux only; zero
// when the server is stopped. Its resolution is 10 ms.
func (c *Cluster) CPUTime() time.Duration {
	c.mu.Lock()
	s := c.server
	c.mu.Unlock()
	if s == nil {
		return 0
	}
	root := s.cmd.Process.Pid
	entries, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := statFields(b)
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		switch {
		case pid == root:
			for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
				n, _ := strconv.ParseInt(f[i], 10, 64)
				ticks += n
			}
		case ppid == root:
			for _, i := range []int{11, 12} {
				n, _ := strconv.ParseInt(f[i], 10, 64)
				ticks += n
			}
		}
	}
	return time.Duration(ticks) * time.Second / ticksPerSecond
}

// statFields are the fields of /proc/PID/stat after the command name
// (field 2, in parentheses, which may hold spaces): f[0] is field 3.
func statFields(b []byte) []string {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}
