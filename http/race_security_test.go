package http

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"verifyd"
)

// concurrently runs fn(i) for i in [0, n) at once and counts the answers.
func concurrently(n int, fn func(i int) string) map[string]int {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[string]int{}
		start  = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			got := fn(i)
			mu.Lock()
			counts[got]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return counts
}

// validateStatus is the status a validate answers, or "204".
func (e *testEnv) validateStatus(id, code string) string {
	w := e.validate(id, code)
	switch w.Code {
	case http.StatusNoContent:
		return "204"
	case http.StatusOK:
		var vc verifyCode
		if err := json.Unmarshal(w.Body.Bytes(), &vc); err == nil {
			return string(vc.Status)
		}
	}
	return fmt.Sprintf("%d %s", w.Code, w.Body)
}

// One right code among many wrong ones, all at once on one request: the
// request ends Verified with fewer than five wrong codes counted, or Locked
// by its fifth with no verify, never both, and every later answer is 204.
func TestRaceRightCodeAmongWrongOnes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for round := range 6 {
		id, code := e.sendCode(fmt.Sprintf("44797908%04d", round))
		right := round * 7
		counts := concurrently(40, func(i int) string {
			if i == right {
				return e.validateStatus(id, code)
			}
			return e.validateStatus(id, wrongCode(code))
		})
		wrong := counts[string(verifyd.CodeNotVerified)] + counts[string(verifyd.CodeLocked)]
		verified, locked := counts[string(verifyd.CodeVerified)], counts[string(verifyd.CodeLocked)]
		switch {
		case verified == 1 && locked == 0 && wrong <= 4:
		case verified == 0 && locked == 1 && wrong == 5:
		default:
			t.Fatalf("round %d: answers %v, want one CodeVerified or one CodeLocked", round, counts)
		}
		if counts["204"] != 40-wrong-verified {
			t.Fatalf("round %d: answers %v", round, counts)
		}
	}
}

// Sends at once to one number: exactly the limit's count pass, and every
// refusal names the same exact Retry-After.
func TestRaceSendsToOneNumber(t *testing.T) {
	t.Parallel()
	const to = "447979080215"
	e := newEnv(t)
	var (
		mu      sync.Mutex
		retries = map[string]int{}
	)
	counts := concurrently(30, func(int) string {
		w := e.createAs("", "", "", to)
		if w.Code == http.StatusBadRequest {
			mu.Lock()
			retries[w.Header().Get("Retry-After")]++
			mu.Unlock()
		}
		return fmt.Sprint(w.Code)
	})
	if counts["202"] != 5 || counts["400"] != 25 || retries["600"] != 25 {
		t.Fatalf("answers %v, Retry-After %v; want 5 accepted and 25 refused for 600 s", counts, retries)
	}
	e.advance(599 * time.Second)
	wantThrottled(t, e.createAs("", "", "", to), "to", "number", 1)
	e.advance(2 * time.Second)
	e.create(`{"to":"` + to + `","from":"Test"}`)
}

// Wrong codes typed at once on every request of one number are all counted
// in its run: a run of exactly the failures setting refuses the next send,
// and one fewer does not.
func TestRaceRunOfWrongCodes(t *testing.T) {
	t.Parallel()
	const to = "447979080215"
	for _, c := range []struct {
		name     string
		failures string
		refused  bool
	}{{"RefusedAtTheRun", "20", true}, {"SentUnderTheRun", "21", false}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, withSettings(func(s *verifyd.Settings) {
				s.Limits = map[string]string{"number": "off", "numberDaily": "off"}
				if err := s.Set("failures", c.failures); err != nil {
					t.Fatal(err)
				}
			}))
			var ids, codes []string
			for range 4 {
				id, code := e.sendCode(to)
				ids, codes = append(ids, id), append(codes, wrongCode(code))
			}
			counts := concurrently(32, func(i int) string { return e.validateStatus(ids[i%4], codes[i%4]) })
			if counts["CodeNotVerified"] != 16 || counts["CodeLocked"] != 4 || counts["204"] != 12 {
				t.Fatalf("answers %v", counts)
			}
			w := e.createAs("", "", "", to)
			if c.refused {
				wantThrottled(t, w, "to", "failures", int(verifyd.DefaultFailureCooldown/time.Second))
			} else if w.Code != http.StatusAccepted {
				t.Fatalf("a run of 20 refused a send under failures=21: %d %s", w.Code, w.Body)
			}
		})
	}
}
