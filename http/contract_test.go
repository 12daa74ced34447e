package http

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"testing"

	"verifyd"
)

// Checks of the running product against API.md, each from a difference an
// outside tester found with curl.

// API.md section 3: a from that is absent, null or "" means the account's
// default sender, else the server's, and the resolved from must not be on
// the account's reserved list (FromReserved). The server's --default-from is
// not judged against any account when the server starts, so a create that
// names no from must judge it: otherwise an account sends under a sender id
// it may not use just by leaving from out.
func TestServerDefaultFromOnTheAccountsReservedList(t *testing.T) {
	t.Parallel()
	e := newEnv(t,
		withConfig(func(cfg *Config) { cfg.DefaultFrom = "Operator" }),
		withSettings(func(s *verifyd.Settings) { s.ReservedFrom = []string{"operator"} }),
	)
	for _, body := range []string{
		`{"to":"447979080215"}`,
		`{"to":"447979080215","from":null}`,
		`{"to":"447979080215","from":""}`,
		`{"to":"447979080215","from":"Operator"}`,
	} {
		w := e.do("POST", "/webapi/verify", body)
		if w.Code != http.StatusBadRequest {
			t.Fatalf("%s: status %d, body %s; want 400 FromReserved", body, w.Code, w.Body)
		}
		if got, want := failures(t, w), []string{"from:FromReserved"}; !slices.Equal(got, want) {
			t.Fatalf("%s: failures %v, want %v", body, got, want)
		}
	}
	// Another sender, or the account's own default, still goes.
	e.create(`{"to":"447979080215","from":"Shop"}`)
	e2 := newEnv(t,
		withConfig(func(cfg *Config) { cfg.DefaultFrom = "Operator" }),
		withSettings(func(s *verifyd.Settings) {
			s.ReservedFrom = []string{"Operator"}
			s.DefaultFrom = "Tenant"
		}),
	)
	vc := e2.create(`{"to":"447979080215"}`)
	if ms, err := e2.store.ClaimMessages(t.Context(), e2.clock(), 60e9, 10); err != nil || len(ms) != 1 || ms[0].From != "Tenant" || ms[0].RequestID != vc.RequestID {
		t.Fatalf("messages %+v, err %v; want one from Tenant", ms, err)
	}
}

// API.md section 4: a validate of an unknown or malformed requestId answers
// 204 with an empty body. An empty requestId (a client whose id variable was
// empty: PUT /webapi/verify//validate) is malformed; the product folded the
// doubled slash away and routed /webapi/verify/validate, the GET and DELETE
// route of a requestId "validate", and answered 405 "This route does not
// take the PUT method" with Allow: DELETE, GET, HEAD.
func TestValidateOfAnEmptyRequestID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, method := range []string{"PUT", "POST"} {
		for _, p := range []string{"/webapi/verify//validate", "/webapi/verify///validate/", "/WebApi/Verify//Validate"} {
			w := e.do(method, p, `{"code":"123456"}`)
			if w.Code != http.StatusNoContent || w.Body.Len() != 0 || w.Header().Get("Content-Type") != "" {
				t.Errorf("%s %s: %d %v %q; want 204 with an empty body", method, p, w.Code, w.Header(), w.Body)
			}
		}
		// The body is still judged first.
		if w := e.do(method, "/webapi/verify//validate", `{}`); w.Code != http.StatusBadRequest {
			t.Errorf("%s with no code: %d %s; want 400", method, w.Code, w.Body)
		}
	}
	// Doubled slashes elsewhere still fold away, and a requestId "validate"
	// is still just an unknown one.
	if w := e.do("POST", "//webapi//verify", `{"to":"447979080215","from":"Test"}`); w.Code != http.StatusAccepted {
		t.Errorf("POST //webapi//verify: %d %s", w.Code, w.Body)
	}
	if w := e.do("GET", "/webapi/verify/validate", ""); w.Code != http.StatusNotFound {
		t.Errorf("GET /webapi/verify/validate: %d %s; want 404", w.Code, w.Body)
	}
}

// API.md section 4: a validate of a malformed requestId answers 204, and
// section 5: a DELETE answers 204 whether or not the id existed. An id
// holding an escaped slash (a client that escapes whatever id it holds) was
// decoded before routing, so its path had a segment more: validate and
// DELETE answered 404 "There is no such route" (or 405, where the decoded
// path folded onto another route) instead.
func TestRequestIDWithAnEscapedSlash(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, id := range []string{"a%2Fb", "A%2fB", "%2F", "%2F%2F", "..%2F..", "%2e%2e", "x%2Fvalidate"} {
		for _, method := range []string{"PUT", "POST"} {
			w := e.do(method, "/webapi/verify/"+id+"/validate", `{"code":"123456"}`)
			if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
				t.Errorf("%s %s/validate: %d %s; want 204", method, id, w.Code, w.Body)
			}
		}
		if w := e.do("DELETE", "/webapi/verify/"+id, ""); w.Code != http.StatusNoContent || w.Body.Len() != 0 {
			t.Errorf("DELETE %s: %d %s; want 204", id, w.Code, w.Body)
		}
		w := e.do("GET", "/webapi/verify/"+id, "")
		var body errorBody
		decodeInto(t, w, &body)
		if w.Code != http.StatusNotFound || body.Message != "There is no verification with that requestId." {
			t.Errorf("GET %s: %d %s; want the 404 of an unknown id", id, w.Code, w.Body)
		}
	}
	// The log line shows the path as routed, the id as one segment.
	e.logMu.Lock()
	logs := e.logs.String()
	e.logMu.Unlock()
	if !strings.Contains(logs, `"path":"/webapi/verify/a%2fb/validate"`) {
		t.Errorf("no log line with the escaped path:\n%s", logs)
	}
	// A real id still matches however it is escaped or cased, and an
	// escaped slash in a fixed part of the path is no route.
	vc := e.create(`{"to":"447979080215","from":"Test"}`)
	for _, p := range []string{vc.RequestID, strings.ToUpper(vc.RequestID), strings.ReplaceAll(vc.RequestID, "-", "%2D")} {
		if w := e.do("GET", "/webapi/verify/"+p+"/", ""); w.Code != http.StatusOK {
			t.Errorf("GET %s: %d %s", p, w.Code, w.Body)
		}
	}
	if w := e.do("POST", "/webapi%2Fverify", `{"to":"447979080215","from":"Test"}`); w.Code != http.StatusNotFound {
		t.Errorf("POST /webapi%%2Fverify: %d %s; want 404", w.Code, w.Body)
	}
}

// API.md section 2: HTTP Basic. RFC 7235 lets any number of spaces follow
// the scheme; Request.BasicAuth takes exactly one, so a client writing two
// was refused with 401 though its credentials were right.
func TestBasicWithSpacesAfterTheScheme(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := base64.StdEncoding.EncodeToString([]byte(e.user + ":" + e.secret))
	for _, c := range []struct {
		header string
		want   int
	}{
		{"Basic " + token, http.StatusNotFound},
		{"Basic  " + token, http.StatusNotFound},
		{"basic    " + token, http.StatusNotFound},
		{"BASIC " + token + " ", http.StatusNotFound},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte(e.user+":"+e.secret+"x")), http.StatusUnauthorized},
		{"Basic  " + base64.StdEncoding.EncodeToString([]byte(e.user+e.secret)), http.StatusUnauthorized},
		{"Basic " + token + "!", http.StatusUnauthorized},
		{"Basic", http.StatusUnauthorized},
		{"Basic ", http.StatusUnauthorized},
	} {
		w := e.doWith("GET", "/webapi/verify/0bd57dc3-580c-4c1d-8aee-2ff79bd8633c", "", func(r *http.Request) {
			r.Header.Set("Authorization", c.header)
		})
		if w.Code != c.want {
			t.Errorf("Authorization %q: %d %s; want %d", c.header, w.Code, w.Body, c.want)
		}
	}
}
