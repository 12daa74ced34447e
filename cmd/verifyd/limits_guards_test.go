package main

import (
	nethttp "net/http"
	"strings"
	"testing"
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
