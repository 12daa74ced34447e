package main

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// writerCounts are the SQLite writer's counters from a verifyd's /metrics:
// whether the one goroutine that runs every write is the bound (busy near
// the whole window) and how many writes share each commit.
type writerCounts struct {
	groups, writes   float64
	busy, committing float64 // seconds
}

// scrapeWriter reads the counters of the verifyds among servers; zero when
// none serves them (the baseline, PostgreSQL).
func scrapeWriter(servers []*process) (sum writerCounts) {
	cl := http.Client{Timeout: 2 * time.Second}
	for _, p := range servers {
		if !strings.HasPrefix(p.name, "verifyd") {
			continue
		}
		resp, err := cl.Get("http://" + p.addr + "/metrics")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			name, v, ok := strings.Cut(sc.Text(), " ")
			if !ok {
				continue
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			switch name {
			case "verifyd_sqlite_commit_groups_total":
				sum.groups += f
			case "verifyd_sqlite_writes_total":
				sum.writes += f
			case "verifyd_sqlite_writer_busy_seconds_total":
				sum.busy += f
			case "verifyd_sqlite_commit_seconds_total":
				sum.committing += f
			}
		}
		resp.Body.Close()
	}
	return sum
}

func (a writerCounts) minus(b writerCounts) writerCounts {
	return writerCounts{a.groups - b.groups, a.writes - b.writes, a.busy - b.busy, a.committing - b.committing}
}

func (a writerCounts) plus(b writerCounts) writerCounts {
	return writerCounts{a.groups + b.groups, a.writes + b.writes, a.busy + b.busy, a.committing + b.committing}
}

// describe says, for a window of d, how busy the writer was and how many
// writes each commit carried; "" when there was no SQLite writer.
func (a writerCounts) describe(d time.Duration) string {
	if a.groups <= 0 || d <= 0 {
		return ""
	}
	return "SQLite writer busy " + strconv.Itoa(int(100*a.busy/d.Seconds()+0.5)) + "% (COMMIT " +
		strconv.Itoa(int(100*a.committing/d.Seconds()+0.5)) + "%), " +
		strconv.FormatFloat(a.writes/a.groups, 'f', 1, 64) + " writes per commit"
}
