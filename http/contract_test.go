package http

import (
	"net/http"
	"slices"
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
