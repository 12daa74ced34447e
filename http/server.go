// Package http serves the verifyd API over HTTP: the Comapi Verify routes,
// the extensions (read, cancel, health) and, in dev mode, the inbox page.
//
// Handlers return errors; one adapter (error.go) renders them, and one table
// maps the domain's error codes to statuses.
package http

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"verifyd"
	"verifyd/auth"
	"verifyd/gsm"
	"verifyd/otp"
	"verifyd/phone"
)

// Config is everything a Server depends on. Store, Auth and Keyring are
// required.
type Config struct {
	Store   verifyd.Store
	Auth    *auth.Checker
	Keyring *otp.Keyring
	Lookup  verifyd.NumberLookup
	Now     func() time.Time
	// Rand is the source of request ids and codes (crypto/rand.Reader in
	// production). The server serialises reads, so it need not be safe for
	// concurrent use.
	Rand   io.Reader
	Logger *slog.Logger
	// DefaultFrom is the sender of an account that names none.
	DefaultFrom string
	// Charset is what the sender's SMSC reads data_coding 0 in (the SMPP
	// URL's charset; zero, GSM 03.38, for the inbox): the segment limit
	// counts a body as it will go out.
	Charset gsm.Charset
	// Dev turns on the inbox routes.
	Dev bool
	// InboxHosts are host names, beyond the ones a browser can only reach
	// this server by directly (IP literals, localhost and *.localhost,
	// names without a dot), that the inbox answers to, such as the host
	// of serve's --addr when it is a name. Any other Host is refused, so a
	// page elsewhere cannot rebind its own domain name to this server and
	// read the codes.
	InboxHosts []string
	// TrustedProxies are the peers whose X-Forwarded-For is believed. When
	// empty the client IP is unknown and the per-IP send limit is off.
	TrustedProxies []netip.Prefix
	// Ready reports whether the server can do its work (database and sender)
	// for /readyz; nil means Store.Ping.
	Ready func(ctx context.Context) error
	// Wake, when set, is called after a create commits a message, to nudge
	// the delivery worker.
	Wake func()
	// Observer, when set, is told of every request and of every change a
	// request made, for metrics; nil counts nothing.
	Observer Observer
	// Receipts, when set, serves GET at its ReceiptPath: the delivery
	// reports of the Kannel sender, without account credentials (each
	// carries its own token). They are recorded through Recorder (default
	// Store), the same path an SMPP sender's receipts take.
	Receipts ReceiptReader
	Recorder verifyd.ReceiptRecorder
	// Metrics, when set, is served at GET /metrics without credentials
	// (promhttp's handler). Leave it nil when the metrics have a listener
	// of their own.
	Metrics http.Handler
}

// Server is the API as an http.Handler.
type Server struct {
	cfg    Config
	mux    *http.ServeMux
	log    *slog.Logger
	now    func() time.Time
	randMu sync.Mutex
	seq    atomic.Uint64 // request ids for log lines
	// metricsOnly makes the route table GET /metrics alone: the server of
	// the listener serve --metrics-addr opens (NewMetricsServer).
	metricsOnly bool
}

var _ http.Handler = (*Server)(nil)

// NewServer returns the API server for cfg. A nil Logger discards, a nil
// Now is time.Now, a nil Rand is crypto/rand and a nil Lookup is the
// built-in one, so that only the parts with no safe default must be given.
func NewServer(cfg Config) *Server {
	return newServer(cfg, false)
}

// NewMetricsServer returns the handler of the listener serve
// --metrics-addr opens: GET /metrics (metrics) and no other route, under the
// wire rules every route of the API follows (API.md sections 1 and 2): the
// path is matched case-insensitively and blind to a trailing slash, a query
// carrying a credential is refused with 400 CredentialsInQuery, any other
// route or method is a JSON 404, or 405 with Allow, and each request has its
// log line. Moving /metrics to its own listener changes nothing else.
func NewMetricsServer(metrics http.Handler, logger *slog.Logger) *Server {
	return newServer(Config{Metrics: metrics, Logger: logger}, true)
}

func newServer(cfg Config, metricsOnly bool) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Lookup == nil {
		cfg.Lookup = phone.Lookup{}
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger, now: cfg.Now, metricsOnly: metricsOnly}
	s.routes()
	return s
}

// requestInfo is what the one log line of a request says beyond the
// basics; handlers add to it (a masked number, a verification id).
type requestInfo struct {
	id    string
	mu    sync.Mutex
	attrs []slog.Attr
}

type infoKey struct{}

// addLog adds attributes to the request's log line. Callers mask numbers
// and never pass a code or a secret.
func addLog(ctx context.Context, attrs ...slog.Attr) {
	if ri, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		ri.mu.Lock()
		ri.attrs = append(ri.attrs, attrs...)
		ri.mu.Unlock()
	}
}

// requestID returns the id of the request's log line.
func requestID(ctx context.Context) string {
	if ri, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return ri.id
	}
	return ""
}

// ServeHTTP normalises the path, refuses credentials in the query, routes,
// recovers panics and writes the request's one log line.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	ri := &requestInfo{id: fmt.Sprintf("%x", s.seq.Add(1))}
	rw := &statusWriter{ResponseWriter: w}

	// A shallow copy with its own URL: cloning the headers as r.Clone does
	// would cost every request an allocation for nothing.
	r2 := r.WithContext(context.WithValue(r.Context(), infoKey{}, ri))
	u := *r.URL
	u.Path, u.RawPath = normalizePath(r.URL)
	r2.URL = &u

	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic", "request", ri.id, "panic", fmt.Sprint(p))
			if rw.status == 0 {
				s.renderError(rw, r2, fmt.Errorf("panic: %v", p))
			}
		}
		route := r2.Pattern
		if route == "" {
			route = "unmatched"
		}
		took := s.now().Sub(start)
		s.observer().Request(route, rw.code(), took)
		attrs := []slog.Attr{
			slog.String("id", ri.id),
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.String("path", r2.URL.EscapedPath()), // as routed (a%2Fb one segment); never the query: it may hold a credential
			slog.Int("status", rw.code()),
			slog.Duration("duration", took),
		}
		ri.mu.Lock()
		attrs = append(attrs, ri.attrs...)
		ri.mu.Unlock()
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	}()

	if credentialsInQuery(r.URL.RawQuery) {
		s.renderError(rw, r2, verifyd.Invalid(verifyd.Failure{
			Property: "",
			Code:     verifyd.FailCredentialsInQuery,
			Details:  "Credentials and codes must not be sent in the query string; use HTTP Basic authentication and the request body.",
		}))
		return
	}

	if _, pattern := s.mux.Handler(r2); pattern == "" {
		s.unrouted(rw, r2)
		return
	}
	s.mux.ServeHTTP(rw, r2)
}

// unrouted answers a request no route matched: 405 with Allow when the path
// exists under another method, else 404, both as JSON errors.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request) {
	h, _ := s.mux.Handler(r)
	probe := &headerProbe{header: http.Header{}}
	h.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", probe.header.Get("Allow"))
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Code: "method_not_allowed", Message: "This route does not take the " + r.Method + " method."})
		return
	}
	s.renderError(w, r, verifyd.Errorf(verifyd.ENOTFOUND, "There is no such route."))
}

// headerProbe runs the mux's own 404/405 handler to learn which it is,
// discarding the plain-text body it writes.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(status int)      { p.status = status }

// normalizePath makes routing case-insensitive and blind to a trailing or
// doubled slash. Request ids are lowercase UUIDs, so lowering them too is
// harmless and lets an uppercased id still match. It returns the path and
// its escaped form for the request's URL.
//
// It works on the path as sent, escapes kept, as the mux matches it: an
// escaped slash (%2F) stays inside its segment, so a request id holding one
// is one malformed id, which validate and DELETE answer 204 and GET 404 as
// for any other, not a path with more segments that no route has (a 404
// "no such route", or a 405 where it happened to fold onto another route).
func normalizePath(u *url.URL) (decoded, escaped string) {
	p := strings.ToLower(u.EscapedPath())
	// An empty request id before /validate (a client whose id variable was
	// empty) is a malformed id, which validate answers 204: Clean would fold
	// its segment away, leaving /webapi/verify/validate, the GET and DELETE
	// route of an id "validate". A segment no id can match stands in for it.
	if t := strings.TrimRight(p, "/"); strings.HasSuffix(t, "//validate") {
		p = t[:len(t)-len("//validate")] + "/-/validate"
	}
	p = path.Clean("/" + p)
	// The mux reads a segment that unescapes to "/" as a trailing slash,
	// which no {id} matches; as an id it is as malformed as any other.
	if strings.Contains(p, "/%2f") {
		segs := strings.Split(p, "/")
		for i, s := range segs {
			if s == "%2f" {
				segs[i] = "-"
			}
		}
		p = strings.Join(segs, "/")
	}
	d, err := url.PathUnescape(p)
	if err != nil {
		// Not reached: the escapes of a parsed URL's path are valid, and
		// lowering their hex digits keeps them so.
		return path.Clean("/" + strings.ToLower(u.Path)), ""
	}
	return d, p
}

// credentialsInQuery reports whether the raw query carries a password, a
// secret or a code, encoded or not. Each parameter is decoded on its own:
// decoding the query whole fails on any one bad escape (x=%zz), which would
// let an encoded name elsewhere (%70assword=) through undecoded, though a
// parser that reads the query parameter by parameter decodes it.
func credentialsInQuery(raw string) bool {
	for _, kv := range strings.FieldsFunc(raw, func(r rune) bool { return r == '&' || r == ';' }) {
		p := strings.ToLower(kv)
		// Decode repeatedly, bounded: %2570assword would otherwise slip past.
		for range 3 {
			if !strings.Contains(p, "%") {
				break
			}
			d, err := url.QueryUnescape(p)
			if err != nil || d == p {
				break
			}
			p = strings.ToLower(d)
		}
		// A code is a credential too (SECURITY.md): a parameter named code,
		// but not countryIsoCode or the like.
		if strings.Contains(p, "password=") || strings.Contains(p, "secret=") || strings.HasPrefix(p, "code=") {
			return true
		}
		// Clients that nest parameters (PHP, Rails) send an array or a hash
		// as name[key]...=: code[]=123456 and verification[code]=123456
		// carry a code all the same, whichever level names it.
		if name, _, ok := strings.Cut(p, "="); ok {
			for _, part := range strings.FieldsFunc(name, func(r rune) bool { return r == '[' || r == ']' }) {
				if part == "code" || strings.HasSuffix(part, "password") || strings.HasSuffix(part, "secret") {
					return true
				}
			}
		}
	}
	return false
}

// statusWriter remembers the status a handler wrote, for the log line.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// clientIP is the address the per-IP send limit is keyed by: "" unless
// trusted proxies are configured; then the peer itself, or when the peer is
// a trusted proxy, the right-most X-Forwarded-For address that is not one.
func (s *Server) clientIP(r *http.Request) string {
	if len(s.cfg.TrustedProxies) == 0 {
		return ""
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return peer.String()
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			// A hop we cannot read was written by someone we do not trust;
			// the last trusted hop's peer is the best we know.
			return peer.String()
		}
		a = a.Unmap()
		if !s.trusted(a) {
			return a.String()
		}
		peer = a
	}
	return peer.String()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
