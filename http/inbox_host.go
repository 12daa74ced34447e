package http

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"verifyd"
)

// onlyDirectHosts refuses an inbox request whose Host is not a name a
// browser reaches this server by directly. The inbox is served without
// credentials, so a page on any site the developer visits could point its
// own domain name at 127.0.0.1 once loaded (DNS rebinding) and read the
// codes as its own origin; the Host it sends is then its own name, which no
// developer's tab sends.
//
// The answer is 403 rather than 421 Misdirected Request: a browser may
// retry a 421 on another connection, and nothing here would change on
// another connection; the request is refused as it is, like a receipt with
// a wrong token.
func (s *Server) onlyDirectHosts(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if !directHost(r.Host, s.cfg.InboxHosts) {
			return verifyd.Errorf(verifyd.EFORBIDDEN,
				"The dev inbox answers only to a Host that names this machine directly: an IP address, localhost, or a name without a dot.")
		}
		return h(w, r)
	}
}

// directHost reports whether host, a Host header with or without its port,
// is one no attacker's domain can stand for: an IP literal (v4 or v6),
// localhost or a name under it (browsers resolve those to loopback
// themselves), a single-label name (a machine on the local network, such as
// devbox: a public domain always has a dot), or one of names. A trailing
// dot is ignored, as DNS does. An empty Host, which no browser sends, is
// refused.
func directHost(host string, names []string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if strings.ContainsAny(host, "[]:") {
		return false
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	switch {
	case host == "":
		return false
	case host == "localhost" || strings.HasSuffix(host, ".localhost"):
		return true
	case !strings.Contains(host, "."):
		return true
	}
	for _, n := range names {
		if host == strings.TrimSuffix(strings.ToLower(n), ".") {
			return true
		}
	}
	return false
}
