package sqlite

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"verifyd"
)

// Creates waiting together run as one bulk; these tests check that each
// caller still gets its own answer, and that the rows are those one by one
// would leave.

func TestCreateVerificationBulk(t *testing.T) {
	t.Parallel()

	t.Run("LimitRefusesSomeOfAGroup", func(t *testing.T) {
		t.Parallel()
		s, _ := openTest(t)
		a := seed(t, s, 0)
		l := verifyd.Limit{Name: "number", Key: "1:number:447700900123", Property: "to",
			Rate: verifyd.Rate{Count: 5, Per: time.Hour}} // a burst of 5, then one per 12 minutes
		release := hold(t, s)
		before := s.WriteStats()
		errs := createAll(s, a, 20, func(int) []verifyd.Limit { return []verifyd.Limit{l} })
		waitQueued(s, 20)
		release()
		results := errs()
		if bulks := s.WriteStats().Bulks - before.Bulks; bulks != 1 {
			t.Fatalf("%d bulk runs, want 1", bulks)
		}
		refusal := l.Throttled(12 * time.Minute)
		sent := 0
		for i, err := range results {
			_, found := s.FindVerification(t.Context(), a.ID, requestID(i+1))
			var e *verifyd.Error
			switch {
			case err == nil && found == nil:
				sent++
			case errors.As(err, &e) && reflect.DeepEqual(*e, *refusal):
				if verifyd.ErrorCode(found) != verifyd.ENOTFOUND {
					t.Fatalf("create %d refused, yet finding it says %v", i+1, found)
				}
			default:
				t.Fatalf("create %d: %v (find: %v), want it stored or refused by the number limit", i+1, err, found)
			}
		}
		if sent != 5 {
			t.Fatalf("%d creates stored, want 5", sent)
		}
		if got := count(t, s, "verifications"); got != 5 {
			t.Fatalf("%d verifications, want 5", got)
		}
		if got := count(t, s, "messages JOIN verifications USING (vid) WHERE request_id = id"); got != 5 {
			t.Fatalf("%d messages with their verification, want 5", got)
		}
		// Charged by the 5 sent only: 5 x 12 minutes.
		if got := tat(t, s, l.Key); !got.Equal(base().Add(time.Hour)) {
			t.Fatalf("bucket at %v, want %v", got, base().Add(time.Hour))
		}
	})

	t.Run("ConflictRunsEachAlone", func(t *testing.T) {
		t.Parallel()
		s, _ := openTest(t)
		a := seed(t, s, 1) // takes requestID(1)
		l := verifyd.Limit{Name: "number", Key: "1:number:447700900123", Property: "to",
			Rate: verifyd.Rate{Count: 10, Per: time.Hour}}
		release := hold(t, s)
		before := s.WriteStats()
		errs := createAll(s, a, 6, func(int) []verifyd.Limit { return []verifyd.Limit{l} })
		waitQueued(s, 6)
		release()
		results := errs()
		if bulks := s.WriteStats().Bulks - before.Bulks; bulks != 0 {
			t.Fatalf("%d bulk runs, want the bulk to fail and each to run alone", bulks)
		}
		for i, err := range results {
			want := ""
			if i == 0 {
				want = verifyd.ECONFLICT
			}
			if verifyd.ErrorCode(err) != want {
				t.Fatalf("create %d: %v, want code %q", i+1, err, want)
			}
		}
		if got := count(t, s, "messages JOIN verifications USING (vid) WHERE request_id = id"); got != 6 {
			t.Fatalf("%d messages with their verification, want the seeded one and 5 new", got)
		}
		// The failed bulk's charges are rolled back; the conflict's own too.
		if got, want := tat(t, s, l.Key), base().Add(5*6*time.Minute); !got.Equal(want) {
			t.Fatalf("bucket at %v, want %v", got, want)
		}
	})

	t.Run("SameRowsAsOneByOne", func(t *testing.T) {
		t.Parallel()
		// Creates to three numbers and their shared prefix, some with no
		// message, some refused; queued in turn, so that the bulk charges
		// and inserts them in the order one by one does.
		limits := func(i int) []verifyd.Limit {
			number := fmt.Sprint("44770090012", i%3)
			return []verifyd.Limit{
				{Name: "number", Key: "1:number:" + number, Property: "to", Rate: verifyd.Rate{Count: 4, Per: time.Hour}},
				{Name: "prefix", Key: "1:prefix:4477009001", Property: "to", Rate: verifyd.Rate{Count: 10, Per: time.Hour}},
			}
		}
		const n = 30
		var (
			stores  []*Store
			answers [][]error
		)
		for _, grouped := range []bool{true, false} {
			s, _ := openTest(t)
			a := seed(t, s, 0)
			var release func()
			if grouped {
				release = hold(t, s)
			}
			before := s.WriteStats()
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				v, m := newVerification(a, i+1, base().Add(time.Duration(i)*time.Second))
				v.PhoneNumber = fmt.Sprint("44770090012", i%3)
				if i%4 == 0 {
					m = nil
				} else {
					m.To = v.PhoneNumber
				}
				create := func() { errs[i] = s.CreateVerification(context.Background(), v, m, limits(i)) }
				if !grouped {
					create()
					continue
				}
				wg.Go(create)
				waitQueued(s, i+1)
			}
			if grouped {
				release()
				wg.Wait()
				if bulks := s.WriteStats().Bulks - before.Bulks; bulks != 1 {
					t.Fatalf("%d bulk runs, want 1", bulks)
				}
			}
			stores, answers = append(stores, s), append(answers, errs)
		}
		if !reflect.DeepEqual(answers[0], answers[1]) {
			t.Fatalf("bulk creates answered %v, one by one %v", answers[0], answers[1])
		}
		refused := 0
		for _, err := range answers[0] {
			if verifyd.ErrorCode(err) == verifyd.EINVALID {
				refused++
			}
		}
		if refused == 0 || refused == n {
			t.Fatalf("%d of %d creates refused: the history tests too little", refused, n)
		}
		for _, q := range []string{
			"SELECT vid, " + verificationColumns + " FROM verifications ORDER BY vid",
			`SELECT vid, request_id, account_id, to_number, from_id, hex(sealed), state, attempts, next_attempt,
				deadline, lease_until, error, created, updated FROM messages ORDER BY vid`,
			"SELECT key, tat FROM limit_buckets ORDER BY key",
		} {
			if got, want := table(t, stores[0], q), table(t, stores[1], q); got != want {
				t.Fatalf("%s\nafter bulk creates:\n%s\none by one:\n%s", q, got, want)
			}
		}
	})
}

// createAll starts creates of the verifications 1 to n of a, each charged
// to limits(i), and returns a wait for their errors, in that order.
func createAll(s *Store, a *verifyd.Account, n int, limits func(i int) []verifyd.Limit) func() []error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range errs {
		wg.Go(func() {
			v, m := newVerification(a, i+1, base())
			errs[i] = s.CreateVerification(context.Background(), v, m, limits(i))
		})
	}
	return func() []error {
		wg.Wait()
		return errs
	}
}

// count is how many rows the FROM clause from gives, as committed.
func count(t *testing.T, s *Store, from string) int {
	t.Helper()
	var n int
	if err := s.rdb.QueryRowContext(t.Context(), "SELECT count(*) FROM "+from).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// tat is the committed bucket of the limit key.
func tat(t *testing.T, s *Store, key string) time.Time {
	t.Helper()
	var v int64
	if err := s.rdb.QueryRowContext(t.Context(), "SELECT tat FROM limit_buckets WHERE key = ?", storedKey(key)).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return fromMS(v)
}

// table is the rows of query, as text.
func table(t *testing.T, s *Store, query string) string {
	t.Helper()
	rows, err := s.rdb.QueryContext(t.Context(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&b, vals...)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
