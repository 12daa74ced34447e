package storetest

import (
	"bytes"
	"sync"
	"testing"

	"verifyd"
)

func testServerKey(t *testing.T, newStore NewStore) {
	a, b := bytes.Repeat([]byte{0xa1}, 32), bytes.Repeat([]byte{0xb2}, 32)

	t.Run("FirstRecordsThenOnlyTheSameKeyPasses", func(t *testing.T) {
		f := newFixture(t, newStore)
		for i, want := range []string{"", "", verifyd.ECONFLICT, ""} {
			key := a
			if i == 2 {
				key = b
			}
			if err := f.s.BindServerKey(f.ctx, key, false); verifyd.ErrorCode(err) != want {
				t.Fatalf("bind %d: %v, want %q", i, err, want)
			}
		}
	})

	t.Run("ReplaceRecordsTheNewKey", func(t *testing.T) {
		f := newFixture(t, newStore)
		if err := f.s.BindServerKey(f.ctx, a, false); err != nil {
			t.Fatal(err)
		}
		if err := f.s.BindServerKey(f.ctx, b, true); err != nil {
			t.Fatalf("replace: %v", err)
		}
		if err := f.s.BindServerKey(f.ctx, b, false); err != nil {
			t.Fatalf("the new key after a replace: %v", err)
		}
		if err := f.s.BindServerKey(f.ctx, a, false); verifyd.ErrorCode(err) != verifyd.ECONFLICT {
			t.Fatalf("the old key after a replace: %v, want %s", err, verifyd.ECONFLICT)
		}
	})

	// Instances started at once with two keys: exactly one key is
	// recorded, and every caller with the other is refused.
	t.Run("ConcurrentFirstBindsAgree", func(t *testing.T) {
		f := newFixture(t, newStore)
		const n = 16
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := a
				if i%2 == 1 {
					key = b
				}
				errs[i] = f.s.BindServerKey(f.ctx, key, false)
			}()
		}
		wg.Wait()
		won := map[bool]int{}
		for i, err := range errs {
			switch verifyd.ErrorCode(err) {
			case "": // nil
				won[i%2 == 1]++
			case verifyd.ECONFLICT:
			default:
				t.Fatalf("bind %d: %v", i, err)
			}
		}
		if len(won) != 1 || (won[false] != n/2 && won[true] != n/2) {
			t.Fatalf("binds that passed, by key: %v; want all of one key's %d and none of the other's", won, n/2)
		}
	})
}
