package sqlite

import (
	"strings"
	"time"

	"verifyd"
)

// chargeLimits charges the send of v at now to every rate limit, or to
// none: it judges them all, and the failure and block limits, first and
// returns the Throttled error of the longest wait, writing nothing, when
// any refuses. It reads and writes all buckets in one statement each,
// since it runs inside every create.
func chargeLimits(t *tx, v *verifyd.Verification, limits []verifyd.Limit, now time.Time) error {
	guard, err := judgeGuards(t, v, limits, now)
	if err != nil {
		return err
	}
	var (
		keys    []any // as stored
		tats    = make(map[string]time.Time, len(limits))
		byStore = make(map[string]string, len(limits)) // stored key -> key
	)
	for _, l := range limits {
		if _, dup := tats[l.Key]; !dup && charged(l) {
			tats[l.Key] = time.Time{} // a new bucket
			stored := storedKey(l.Key)
			byStore[stored] = l.Key
			keys = append(keys, stored)
		}
	}
	if len(keys) > 0 {
		if err := readBuckets(t, keys, byStore, tats); err != nil {
			return err
		}
	}
	var (
		refused *verifyd.Limit
		longest time.Duration
	)
	for i, l := range limits {
		if !charged(l) {
			if wait, ok := guard.waits[i]; ok && (refused == nil || wait > longest) {
				refused, longest = &limits[i], wait
			}
			continue
		}
		// A key listed twice is charged twice, as two sends would be.
		next, wait, ok := l.Take(tats[l.Key], now)
		if !ok {
			if refused == nil || wait > longest {
				refused, longest = &limits[i], wait
			}
			continue
		}
		tats[l.Key] = next
	}
	if refused != nil {
		return refused.Throttled(longest)
	}
	if guard.runOver {
		if err := forgetRun(t, v, guard.lastFail); err != nil {
			return err
		}
	}
	if len(keys) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, ms(tats[byStore[k.(string)]]))
	}
	_, err = t.exec("INSERT INTO limit_buckets (key, tat) VALUES "+
		strings.TrimSuffix(strings.Repeat("(?, ?), ", len(keys)), ", ")+
		" ON CONFLICT (key) DO UPDATE SET tat = excluded.tat", args...)
	return err
}

// charged reports whether a send is charged to l: a rate that is on.
func charged(l verifyd.Limit) bool { return l.Kind == verifyd.LimitRate && !l.Rate.Off() }

// readBuckets fills tats with the tat of every stored key that has one.
func readBuckets(t *tx, keys []any, byStore map[string]string, tats map[string]time.Time) error {
	rows, err := t.query("SELECT key, tat FROM limit_buckets WHERE key IN ("+
		strings.TrimSuffix(strings.Repeat("?, ", len(keys)), ", ")+")", keys...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			key string
			tat int64
		)
		if err := rows.Scan(&key, &tat); err != nil {
			return err
		}
		tats[byStore[key]] = fromMS(tat)
	}
	return rows.Err()
}

// storedKey is how a bucket key is stored: its last field (the number,
// prefix or country) first, so that the buckets of one number and of its
// prefix sort together and a create dirties one page of them, not three.
// Any key works; the order only matters for speed.
func storedKey(key string) string {
	return key[strings.LastIndexByte(key, ':')+1:] + "|" + key
}
