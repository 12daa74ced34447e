package verifyd

import (
	"encoding/json"
	"testing"
)

// NIST SP 800-63B caps the consecutive wrong codes a number may take across
// its requests at 100 (SECURITY.md). The failures setting may lower that
// cap or switch the rule off, never raise it: accounts set refuses a larger
// run, and one stored before the cap was enforced is judged at 100.
func TestFailuresNeverAboveTheNISTCap(t *testing.T) {
	t.Parallel()
	t.Run("SetRefusesMore", func(t *testing.T) {
		var s Settings
		for _, v := range []string{"101", "1000"} {
			if err := s.Set("failures", v); err == nil {
				t.Fatalf("failures=%s accepted", v)
			}
		}
		if max, _, on := s.Failures(); max != DefaultMaxFailures || !on {
			t.Fatalf("after refusals: max %d on %v, want the default", max, on)
		}
		for _, v := range []string{"1", "100"} {
			if err := s.Set("failures", v); err != nil {
				t.Fatalf("failures=%s: %v", v, err)
			}
		}
	})
	t.Run("StoredLargerRunIsCapped", func(t *testing.T) {
		var s Settings
		if err := json.Unmarshal([]byte(`{"maxFailures":1000}`), &s); err != nil {
			t.Fatal(err)
		}
		if max, _, _ := s.Failures(); max != 100 {
			t.Fatalf("a stored run of 1000 is judged at %d, want 100", max)
		}
	})
}
