package http

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"verifyd"
	"verifyd/auth"
)

// wrong returns a code of the same length that is not code.
func wrong(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func statusOf(t *testing.T, e *testEnv, id, code string) (int, map[string]any) {
	t.Helper()
	w := e.validate(id, code)
	if w.Code == http.StatusNoContent {
		if w.Body.Len() != 0 {
			t.Fatalf("204 with a body: %s", w.Body)
		}
		return w.Code, nil
	}
	var got map[string]any
	decodeInto(t, w, &got)
	return w.Code, got
}

func TestValidate(t *testing.T) {
	t.Parallel()
	t.Run("RightCodeVerifiesOnce", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id, code := e.sendCode("447979080215")
		e.advance(90 * time.Second)
		st, got := statusOf(t, e, id, code)
		if st != 200 || got["status"] != "CodeVerified" || got["verified"] != "2025-03-04T10:22:00.419Z" ||
			got["requestId"] != id || got["phoneNumber"] != "447979080215" || got["numberStatus"] != "On" ||
			got["created"] != "2025-03-04T10:20:30.419Z" {
			t.Fatalf("%d %v", st, got)
		}
		if st, _ := statusOf(t, e, id, code); st != http.StatusNoContent {
			t.Fatalf("second validate: %d, want 204", st)
		}
		e.noLeaks(code, "447979080215")
	})
	t.Run("FourWrongThenLocked", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id, code := e.sendCode("447979080215")
		for i := 1; i <= 4; i++ {
			st, got := statusOf(t, e, id, wrong(code))
			if st != 200 || got["status"] != "CodeNotVerified" {
				t.Fatalf("wrong code %d: %d %v", i, st, got)
			}
			if _, ok := got["verified"]; ok {
				t.Fatalf("verified written for an unverified code: %v", got)
			}
			v, _ := e.store.FindVerification(t.Context(), e.account.ID, id)
			if v.Attempts != i {
				t.Fatalf("attempts = %d after %d wrong codes", v.Attempts, i)
			}
		}
		if st, got := statusOf(t, e, id, wrong(code)); st != 200 || got["status"] != "CodeLocked" {
			t.Fatalf("fifth wrong code: %d %v", st, got)
		}
		if st, _ := statusOf(t, e, id, code); st != http.StatusNoContent {
			t.Fatalf("right code after the lock: %d, want 204", st)
		}
	})
	t.Run("AccountMaxAttempts", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withSettings(func(s *verifyd.Settings) { s.MaxAttempts = 2 }))
		id, code := e.sendCode("447979080215")
		statusOf(t, e, id, wrong(code))
		if _, got := statusOf(t, e, id, wrong(code)); got["status"] != "CodeLocked" {
			t.Fatalf("second wrong code of 2: %v", got)
		}
	})
	t.Run("ExpiredByTheClock", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id, code := e.sendCode("447979080215")
		e.advance(10*time.Minute - time.Millisecond)
		statusOf(t, e, id, wrong(code)) // still in time: counts as a wrong code
		e.advance(time.Millisecond)
		if st, got := statusOf(t, e, id, code); st != 200 || got["status"] != "CodeExpired" {
			t.Fatalf("right code at expiry: %d %v", st, got)
		}
		if st, _ := statusOf(t, e, id, code); st != http.StatusNoContent {
			t.Fatalf("after expiry: %d, want 204", st)
		}
	})
	t.Run("CodeOfAnotherRequestFails", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		idA, codeA := e.sendCode("447979080215")
		idB, codeB := e.sendCode("447979080215")
		if codeA == codeB {
			t.Skip("the seeded source drew the same code twice")
		}
		if _, got := statusOf(t, e, idB, codeA); got["status"] != "CodeNotVerified" {
			t.Fatalf("code of A on B: %v", got)
		}
		if _, got := statusOf(t, e, idA, codeA); got["status"] != "CodeVerified" {
			t.Fatalf("code of A on A: %v", got)
		}
	})
	t.Run("OtherAccountAndUnknownAnswer204", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id, code := e.sendCode("447979080215")
		other := &verifyd.Account{Name: "other", Created: t0, SecretDigest: auth.Digest("other-secret")}
		if err := e.store.CreateAccount(t.Context(), other); err != nil {
			t.Fatal(err)
		}
		w := e.doWith("PUT", "/webapi/verify/"+id+"/validate", `{"code":"`+code+`"}`, func(r *http.Request) { r.SetBasicAuth("other", "other-secret") })
		if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
			t.Fatalf("other account: %d %s", w.Code, w.Body)
		}
		for _, bad := range []string{"0bd57dc3-580c-4c1d-8aee-2ff79bd8633c", "not-a-uuid", strings.Repeat("a", 300)} {
			if st, _ := statusOf(t, e, bad, code); st != http.StatusNoContent {
				t.Fatalf("id %q: %d, want 204", bad, st)
			}
		}
		// Untouched by all that: the owner still verifies.
		if _, got := statusOf(t, e, id, code); got["status"] != "CodeVerified" {
			t.Fatalf("owner after the others: %v", got)
		}
	})
	t.Run("UppercaseIDAndPOSTAlias", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id, code := e.sendCode("447979080215")
		w := e.do("POST", "/WebApi/Verify/"+strings.ToUpper(id)+"/Validate/", `{"code":"`+code+`"}`)
		if w.Code != 200 || !strings.Contains(w.Body.String(), "CodeVerified") {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}

func TestValidateBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, code := e.sendCode("447979080215")
	for _, c := range []struct {
		name, body, want string
	}{
		{"Missing", `{}`, "code:InvalidJson"},
		{"Null", `{"code":null}`, "code:InvalidJson"},
		{"Empty", `{"code":""}`, "code:InvalidJson"},
		{"Blank", `{"code":"   "}`, "code:InvalidJson"},
		{"Bool", `{"code":true}`, "code:InvalidJson"},
		{"NotJSON", `code=123456`, ":InvalidJson"},
		{"Letters", `{"code":"12a456"}`, "code:CodeInvalid"},
		{"Short", `{"code":"12345"}`, "code:CodeInvalid"},
		{"Long", `{"code":"1234567"}`, "code:CodeInvalid"},
		{"InnerSpace", `{"code":"123 456"}`, "code:CodeInvalid"},
		{"NegativeNumber", `{"code":-12345}`, "code:CodeInvalid"},
		{"Fraction", `{"code":12345.6}`, "code:CodeInvalid"},
		{"Exponent", `{"code":1e5}`, "code:CodeInvalid"},
		{"ArabicIndicDigits", `{"code":"١٢٣٤٥٦"}`, "code:CodeInvalid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Judged before the id: the same answer for a real and a bogus id.
			for _, target := range []string{id, "bogus"} {
				w := e.do("PUT", "/webapi/verify/"+target+"/validate", c.body)
				if got := failures(t, w); w.Code != 400 || len(got) != 1 || got[0] != c.want {
					t.Fatalf("%s: %d %v, want %s", target, w.Code, got, c.want)
				}
			}
		})
	}
	t.Run("NoAttemptWasUsed", func(t *testing.T) {
		v, _ := e.store.FindVerification(t.Context(), e.account.ID, id)
		if v.Attempts != 0 || v.State != verifyd.StatePending {
			t.Fatalf("verification = %+v", v)
		}
	})
	t.Run("SpacesTrimmedInArray", func(t *testing.T) {
		w := e.do("PUT", "/webapi/verify/"+id+"/validate", `[{"code":"  `+code+` "}]`)
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"CodeVerified"`) {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}

func TestValidateNumberIsLeftPadded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSettings(func(s *verifyd.Settings) { s.LimitsOff = true }))
	// Send until a code with a leading zero comes up: the seeded source
	// makes this deterministic, and one in ten codes has one.
	for i := range 200 {
		id, code := e.sendCode(fmt.Sprintf("4479790%05d", i))
		if code[0] != '0' {
			continue
		}
		w := e.do("PUT", "/webapi/verify/"+id+"/validate", `{"code":`+strings.TrimLeft(code, "0")+`}`)
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"CodeVerified"`) {
			t.Fatalf("code %s as a number: %d %s", code, w.Code, w.Body)
		}
		return
	}
	t.Fatal("no code with a leading zero in 200 draws")
}

// Of many concurrent validates with the right code, exactly one verifies.
func TestValidateConcurrentRightCodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, code := e.sendCode("447979080215")
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			w := e.validate(id, code)
			key := fmt.Sprint(w.Code)
			if w.Code == 200 {
				key = w.Body.String()
			}
			mu.Lock()
			counts[key]++
			mu.Unlock()
		})
	}
	wg.Wait()
	verified := 0
	for k, n := range counts {
		switch {
		case strings.Contains(k, `"CodeVerified"`):
			verified += n
		case k != "204":
			t.Errorf("%d answers of %s", n, k)
		}
	}
	if verified != 1 || counts["204"] != 49 {
		t.Fatalf("answers = %v, want one CodeVerified and 49 204s", counts)
	}
}

func TestGetAndCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, code := e.sendCode("447979080215")

	get := func() map[string]any {
		t.Helper()
		w := e.do("GET", "/webapi/verify/"+id, "")
		if w.Code != 200 {
			t.Fatalf("GET: %d %s", w.Code, w.Body)
		}
		var got map[string]any
		decodeInto(t, w, &got)
		return got
	}
	t.Run("Pending", func(t *testing.T) {
		got := get()
		if got["state"] != "Pending" || got["attemptsRemaining"] != 5.0 || got["validUntil"] != "2025-03-04T10:30:30.419Z" ||
			got["phoneNumber"] != "447979080215" || got["numberStatus"] != "On" {
			t.Fatalf("record = %v", got)
		}
		d, _ := got["delivery"].(map[string]any)
		if d == nil || d["state"] == nil || d["updated"] == nil {
			t.Fatalf("delivery = %v", got["delivery"])
		}
		if _, ok := got["verified"]; ok {
			t.Fatal("verified written for a pending request")
		}
	})
	t.Run("AfterAWrongCode", func(t *testing.T) {
		statusOf(t, e, id, wrong(code))
		if got := get(); got["attemptsRemaining"] != 4.0 {
			t.Fatalf("record = %v", got)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		for _, bad := range []string{"0bd57dc3-580c-4c1d-8aee-2ff79bd8633c", "nope"} {
			w := e.do("GET", "/webapi/verify/"+bad, "")
			var body errorBody
			decodeInto(t, w, &body)
			if w.Code != 404 || body.Code != verifyd.ENOTFOUND || body.Message == "" {
				t.Fatalf("%s: %d %s", bad, w.Code, w.Body)
			}
		}
	})
	t.Run("CancelThenValidateIs204", func(t *testing.T) {
		for range 2 {
			if w := e.do("DELETE", "/webapi/verify/"+id, ""); w.Code != http.StatusNoContent || w.Body.Len() != 0 {
				t.Fatalf("DELETE: %d %s", w.Code, w.Body)
			}
		}
		if got := get(); got["state"] != "Cancelled" || got["attemptsRemaining"] != 0.0 {
			t.Fatalf("record = %v", got)
		}
		if st, _ := statusOf(t, e, id, code); st != http.StatusNoContent {
			t.Fatalf("validate after cancel: %d", st)
		}
	})
	t.Run("CancelUnknownIs204", func(t *testing.T) {
		for _, bad := range []string{"0bd57dc3-580c-4c1d-8aee-2ff79bd8633c", "nope"} {
			if w := e.do("DELETE", "/webapi/verify/"+bad, ""); w.Code != http.StatusNoContent {
				t.Fatalf("%s: %d", bad, w.Code)
			}
		}
	})
	t.Run("Verified", func(t *testing.T) {
		id2, code2 := e.sendCode("447979080216")
		statusOf(t, e, id2, code2)
		w := e.do("GET", "/webapi/verify/"+id2, "")
		if !strings.Contains(w.Body.String(), `"state":"Verified"`) || !strings.Contains(w.Body.String(), `"verified":"2025-03-04T10:20:30.419Z"`) {
			t.Fatalf("record = %s", w.Body)
		}
		if w := e.do("DELETE", "/webapi/verify/"+id2, ""); w.Code != http.StatusNoContent {
			t.Fatalf("DELETE of a verified request: %d", w.Code)
		}
		if w := e.do("GET", "/webapi/verify/"+id2, ""); !strings.Contains(w.Body.String(), `"state":"Verified"`) {
			t.Fatalf("DELETE changed a verified request: %s", w.Body)
		}
	})
}

// TestGetRecordWritesEveryDocumentedKey holds GET /webapi/verify/{id} to the
// keys API.md lists for the record: every one is written, and only verified
// is left out when it does not apply ("verified" (when verified)). A value
// that does not exist yet (a queued message's carrier id, the error of a
// message that did not fail, the delivery of a request that sent nothing) is
// null, not a missing key.
func TestGetRecordWritesEveryDocumentedKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testNumbers("447979081003:status=Dead"))
	keys := func(id string) map[string]json.RawMessage {
		t.Helper()
		w := e.do("GET", "/webapi/verify/"+id, "")
		if w.Code != 200 {
			t.Fatalf("GET: %d %s", w.Code, w.Body)
		}
		var got map[string]json.RawMessage
		decodeInto(t, w, &got)
		return got
	}
	want := []string{"requestId", "phoneNumber", "state", "numberStatus", "created", "validUntil", "attemptsRemaining", "delivery"}
	t.Run("Queued", func(t *testing.T) {
		id, _ := e.sendCode("447979080215")
		got := keys(id)
		for _, k := range want {
			if _, ok := got[k]; !ok {
				t.Errorf("record has no %q: %v", k, got)
			}
		}
		var d map[string]json.RawMessage
		if err := json.Unmarshal(got["delivery"], &d); err != nil || d == nil {
			t.Fatalf("delivery = %s (%v)", got["delivery"], err)
		}
		for _, k := range []string{"state", "messageId", "error", "updated"} {
			if _, ok := d[k]; !ok {
				t.Errorf("delivery has no %q: %s", k, got["delivery"])
			}
		}
		if string(d["messageId"]) != "null" || string(d["error"]) != "null" {
			t.Errorf("a queued message's messageId and error = %s, %s, want null", d["messageId"], d["error"])
		}
	})
	t.Run("NotSent", func(t *testing.T) {
		vc := e.create(`{"to":"447979081003","from":"Test"}`)
		got := keys(vc.RequestID)
		for _, k := range want {
			if _, ok := got[k]; !ok {
				t.Errorf("record has no %q: %v", k, got)
			}
		}
		if string(got["delivery"]) != "null" {
			t.Errorf("delivery of a request that sent nothing = %s, want null", got["delivery"])
		}
	})
}

// TestExpiredButNeverValidated holds a pending request past its validity
// to what API.md says of the states: its record reads Expired (with no
// attempts left) though no validate has written that, and a DELETE then
// records it Expired, not Cancelled: it ended before the cancel came.
func TestExpiredButNeverValidated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, code := e.sendCode("447979080217")
	e.advance(verifyd.DefaultValidity)

	for _, step := range []string{"GET", "DELETE", "GET again"} {
		if step == "DELETE" {
			if w := e.do("DELETE", "/webapi/verify/"+id, ""); w.Code != http.StatusNoContent {
				t.Fatalf("DELETE: %d %s", w.Code, w.Body)
			}
			continue
		}
		if got := e.getRecord(id); got.State != verifyd.StateExpired || got.AttemptsRemaining != 0 {
			t.Fatalf("%s: state %s, attemptsRemaining %d; want Expired, 0", step, got.State, got.AttemptsRemaining)
		}
	}
	if st, _ := statusOf(t, e, id, code); st != http.StatusNoContent {
		t.Fatalf("validate after the expiry was recorded: %d, want 204", st)
	}
}
