package verifyd

import (
	"fmt"
	"testing"
	"time"
)

// SECURITY.md bounds what an account may choose for its codes: 4 to 10
// digits, and a validity of at most 30 minutes (Comapi's cap). Each bound is
// taken and the value just past it refused.
func TestCodeSettingsStayWithinTheirBounds(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		key           string
		lo, hi        int
		get           func(Settings) int
		tooLow, tooHi string
	}{
		{"codeLength", 4, 10, Settings.CodeLen, "3", "11"},
		{"validMinutes", 1, int(MaxValidity / time.Minute), func(s Settings) int { return int(s.Validity() / time.Minute) }, "0", "31"},
	} {
		for _, ok := range []int{c.lo, c.hi} {
			var s Settings
			if err := s.Set(c.key, fmt.Sprint(ok)); err != nil || c.get(s) != ok {
				t.Errorf("%s=%d: %v, reads %d", c.key, ok, err, c.get(s))
			}
		}
		for _, bad := range []string{c.tooLow, c.tooHi} {
			var s Settings
			if err := s.Set(c.key, bad); err == nil {
				t.Errorf("%s=%s accepted", c.key, bad)
			}
		}
	}
	if MaxValidity != 30*time.Minute {
		t.Errorf("MaxValidity is %v, want 30m", MaxValidity)
	}
}
