package main

import (
	nethttp "net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// limits show answers why sends to a number are refused, so it names the
// refusals that are not limits too: a number outside the account's
// countries, and a disabled account. It said "A send now passes." of both,
// while the API refused every send.
func TestLimitsShowRefusalsThatAreNotLimits(t *testing.T) {
	t.Parallel()
	t.Run("countries", func(t *testing.T) {
		t.Parallel()
		d := newDesk(t, "countries=FRA,DEU")
		if w := d.call("POST", "/webapi/verify", `{"to":"447979080215","from":"Test"}`); w.Code != nethttp.StatusBadRequest ||
			!strings.Contains(w.Body.String(), "CountryNotAllowed") {
			t.Fatalf("a create to GB under countries=FRA,DEU: %d %s", w.Code, w.Body)
		}
		out := d.show("447979080215")
		wantLines(t, "show of a number outside the countries", out,
			`Not allowed: the account's countries \(FRA, DEU\) leave out GB, so every send to this number is refused with CountryNotAllowed, whatever its limits\.`,
			`A send now is refused: the number is outside the account's countries\.`)
		if strings.Contains(out, "A send now passes.") {
			t.Errorf("show says a send passes:\n%s", out)
		}
		// A number in the list is judged by its limits alone.
		if out := d.show("33612345678"); !strings.Contains(out, "A send now passes.") || strings.Contains(out, "Not allowed") {
			t.Errorf("show of a French number under countries=FRA,DEU:\n%s", out)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		d := newDesk(t)
		if _, err := d.cli("accounts", "disable", "shop"); err != nil {
			t.Fatal(err)
		}
		if w := d.call("POST", "/webapi/verify", `{"to":"447979080215","from":"Test"}`); w.Code != nethttp.StatusUnauthorized {
			t.Fatalf("a create by a disabled account: %d %s", w.Code, w.Body)
		}
		out := d.show("447979080215")
		wantLines(t, "show under a disabled account", out,
			`Disabled: the account is disabled, so all its requests are refused 401 before any limit \('verifyd accounts enable shop' enables it\)\.`,
			`A send now is refused: the account is disabled\.`)
		if strings.Contains(out, "A send now passes.") {
			t.Errorf("show says a send passes:\n%s", out)
		}
	})
}

// The times limits show prints, and the waits between them, were
// nanosecond-precise at a real clock ("refused for 9m59.876543211s, until
// 2026-03-01T12:10:00.000000001Z"), digits no reader needs; they are now
// milliseconds, and the "as of" time plus each wait is still its until.
func TestLimitsShowTimesInMilliseconds(t *testing.T) {
	t.Parallel()
	d := newDesk(t, "limit.number=1/10m")
	d.now = d.now.Add(123456789 * time.Nanosecond)
	d.sent("447979080215")
	d.now = d.now.Add(time.Nanosecond)
	out := d.show("447979080215")
	if regexp.MustCompile(`\d\.\d{4,}`).MatchString(out) {
		t.Errorf("show prints times or waits finer than a millisecond:\n%s", out)
	}
	wantLines(t, "show at a clock of nanoseconds", out,
		`Limits of account shop on sends to 447979080215 \(GB\) as of 2026-03-01T12:00:00\.123Z:`,
		`number\s+1/10m\s+1 send\s+refused for 10m0s, until 2026-03-01T12:10:00\.123Z \(Retry-After: 600\)`)
}
