package http

import (
	"context"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzNormalizePath holds normalizePath to what routing relies on: the
// escaped path it returns is what the request's URL then reports (else the
// mux would route a re-escaped form), it decodes to the path it returns, and
// it is clean: no request is answered with the mux's 301 to a cleaned
// form, whatever its path.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/webapi/verify", "/WebApi/Verify/", "/webapi/verify/a%2Fb/validate", "/webapi/verify/%2F/validate",
		"/webapi/verify//validate", "/webapi/verify/%2e%2e/validate", "/a/../b", "//x//y//", "/%41%2f%2F/", "/é/%C3%A9", "/readyz/%2e"} {
		f.Add(s)
	}
	srv := NewServer(Config{Ready: func(context.Context) error { return nil }})
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.ParseRequestURI(raw)
		if err != nil || u.Path == "" || u.Path[0] != '/' {
			return
		}
		d, p := normalizePath(u)
		n := *u
		n.Path, n.RawPath = d, p
		if got := n.EscapedPath(); p != "" && got != p {
			t.Fatalf("%q: EscapedPath %q, want %q", raw, got, p)
		}
		if p != "" {
			if dec, err := url.PathUnescape(p); err != nil || dec != d {
				t.Fatalf("%q: %q decodes to %q (%v), want %q", raw, p, dec, err, d)
			}
		}
		// No credentials: every route answers without the store.
		for _, method := range []string{"GET", "PUT", "DELETE"} {
			r := httptest.NewRequest(method, "/", nil)
			r.URL, r.RequestURI = u, raw
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			if w.Code/100 == 3 || w.Code >= 500 {
				t.Fatalf("%s %q: %d %v", method, raw, w.Code, w.Header())
			}
		}
	})
}
