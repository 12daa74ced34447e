package http

import (
	"encoding/base64"
	"log/slog"
	"net/http"
	"strings"

	"verifyd"
)

// accountHandler is a route that needs an authenticated account.
type accountHandler func(w http.ResponseWriter, r *http.Request, a *verifyd.Account) error

// authed checks the request's credentials before h runs: HTTP Basic, or
// the username and password headers the Comapi jQuery sample sends (Basic
// wins when both are there). Every refusal is the same 401.
func (s *Server) authed(h accountHandler) http.Handler {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		user, pass, ok := credentials(r)
		if !ok {
			return verifyd.Errorf(verifyd.EUNAUTHORIZED, unauthorizedText)
		}
		a, err := s.cfg.Auth.Check(r.Context(), user, pass)
		if err != nil {
			return err
		}
		addLog(r.Context(), slogAccount(a))
		return h(w, r, a)
	})
}

// credentials returns the presented username and secret.
func credentials(r *http.Request) (user, pass string, ok bool) {
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if strings.EqualFold(scheme, "Basic") {
		// A malformed Basic header is a refusal, not a reason to fall back
		// to the other headers. Another scheme (a gateway's Bearer token)
		// carries no Basic credentials, so the headers are what is presented.
		return basicCredentials(token)
	}
	user, pass = r.Header.Get("username"), r.Header.Get("password")
	return user, pass, user != "" && pass != ""
}

// basicCredentials decodes the credentials of a Basic Authorization header
// (RFC 7617): the base64 of user:secret, split at the first colon. RFC 7235
// allows any number of spaces after the scheme, where Request.BasicAuth
// takes exactly one and refuses a client that writes two.
func basicCredentials(token string) (user, pass string, ok bool) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimLeft(token, " "))
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(b), ":")
}

// slogAccount is the log attribute naming the account of a request.
func slogAccount(a *verifyd.Account) slog.Attr { return slog.String("account", a.Name) }
