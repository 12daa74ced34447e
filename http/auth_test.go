package http

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

func TestUnauthorized(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := `{"from":"Test","to":"4479790802150"}`
	var first *http.Response
	var firstBody string
	for _, c := range []struct {
		name string
		edit func(r *http.Request)
	}{
		{"NoCredentials", func(r *http.Request) {}},
		{"UnknownUser", func(r *http.Request) { r.SetBasicAuth("nobody", e.secret) }},
		{"WrongSecret", func(r *http.Request) { r.SetBasicAuth(e.user, e.secret+"x") }},
		{"NotBasic", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+e.secret) }},
		{"BadBase64", func(r *http.Request) { r.Header.Set("Authorization", "Basic !!!") }},
		{"BasicWinsOverHeaders", func(r *http.Request) {
			r.SetBasicAuth(e.user, "wrong")
			r.Header.Set("username", e.user)
			r.Header.Set("password", e.secret)
		}},
		{"HeaderUserOnly", func(r *http.Request) { r.Header.Set("username", e.user) }},
		{"HeaderWrongPassword", func(r *http.Request) {
			r.Header.Set("username", e.user)
			r.Header.Set("password", "nope")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := e.doWith("POST", "/webapi/verify", body, c.edit)
			res := w.Result()
			if res.StatusCode != 401 {
				t.Fatalf("status %d, body %s", res.StatusCode, w.Body)
			}
			if got := res.Header.Get("WWW-Authenticate"); got != `Basic realm="verifyd"` {
				t.Fatalf("WWW-Authenticate = %q", got)
			}
			if got := w.Body.String(); got != "No authorization header supplied or invalid username or password" {
				t.Fatalf("body = %q", got)
			}
			if first == nil {
				first, firstBody = res, w.Body.String()
				return
			}
			if w.Body.String() != firstBody || !sameHeaders(first.Header, res.Header) {
				t.Fatalf("answer differs from the first refusal: %v vs %v", res.Header, first.Header)
			}
		})
	}
	t.Run("NothingWasQueued", func(t *testing.T) {
		if ms, _ := e.store.ClaimMessages(t.Context(), e.clock(), 60e9, 10); len(ms) != 0 {
			t.Fatalf("%d messages queued by refused requests", len(ms))
		}
	})
	e.noLeaks()
}

func sameHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if strings.Join(a[k], ",") != strings.Join(b[k], ",") {
			return false
		}
	}
	return true
}

func TestBasicWithColonInSecretStillSplitsAtTheFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.doWith("GET", "/webapi/verify/0bd57dc3-580c-4c1d-8aee-2ff79bd8633c", "", func(r *http.Request) {
		r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(e.user+":"+e.secret)))
	})
	if w.Code != 404 {
		t.Fatalf("status %d, want 404 (authenticated, unknown id)", w.Code)
	}
}

func TestCredentialsInQuery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, q := range []string{"password=hunter2", "user=app&Secret=abc", "x=1&PASSWORD=2", "pass%77ord=x", "client_secret=zz", "code=123456", "a=1&code=9",
		// An encoded name beside a bad escape elsewhere: the query as a whole
		// does not decode, each parameter does.
		"x=%zz&pass%77ord=hunter2", "%73ecret=abc&y=%", "%63ode=123456&z=%g1", "%2570assword=x",
		// PHP and Rails clients send an array or a hash as name[...]=.
		"code[]=123456", "Code%5B%5D=1", "code%5b0%5d=1", "a=1&code[0]=9", "code[a][b]=1", "CODE[x]=1",
		"password[]=hunter2", "client_secret[]=zz", "Secret%5B0%5D=abc", "%2570assword[]=x",
		// or name a credential inside the hash.
		"verification[code]=123456", "user%5Bpassword%5D=x", "client[api_secret]=zz", "a[b][code]=1"} {
		t.Run(q, func(t *testing.T) {
			// Refused before authentication: no credentials at all.
			w := e.doWith("POST", "/webapi/verify?"+q, `{"to":"447979080215","from":"Test"}`, nil)
			if got := failures(t, w); w.Code != 400 || len(got) != 1 || got[0] != ":CredentialsInQuery" {
				t.Fatalf("%d %v", w.Code, got)
			}
		})
	}
	e.noLeaks("hunter2", "Secret=abc", "PASSWORD=2", "client_secret")
	for _, q := range []string{"passwords_are=fine&countryIsoCode=GBR", "codec=h264", "codeLength=6", "codes=1",
		"countryIsoCode[]=GBR", "codec[]=h264", "passwords[]=fine", "filter[codec]=h264", "user[codes][]=1"} {
		if w := e.do("GET", "/webapi/verify/x?"+q, ""); w.Code != 404 {
			t.Errorf("?%s, a query merely mentioning credentials: %d %s", q, w.Code, w.Body)
		}
	}
}

// TestHeadersAcceptedBesideAnotherScheme holds the jQuery sample's username
// and password headers to API.md: "accept those too (Basic wins when both are
// present)". An Authorization header of another scheme carries no Basic
// credentials, so the headers are what the request presents.
func TestHeadersAcceptedBesideAnotherScheme(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct {
		name, authorization, password string
		want                          int
	}{
		{"Bearer", "Bearer some-gateway-token", e.secret, 404},
		{"LowercaseScheme", "bearer x", e.secret, 404},
		{"ErrBearerAndWrongPassword", "Bearer some-gateway-token", "wrong", 401},
		{"ErrMalformedBasic", "Basic !!!", e.secret, 401},
		{"ErrBasicWithoutCredentials", "Basic", e.secret, 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := e.doWith("GET", "/webapi/verify/0bd57dc3-580c-4c1d-8aee-2ff79bd8633c", "", func(r *http.Request) {
				r.Header.Set("Authorization", c.authorization)
				r.Header.Set("username", e.user)
				r.Header.Set("password", c.password)
			})
			if w.Code != c.want {
				t.Fatalf("status %d, want %d (%s)", w.Code, c.want, w.Body)
			}
		})
	}
}
