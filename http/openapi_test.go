package http

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"verifyd"
	"verifyd/kannel"
)

// loadOpenAPI parses and validates the embedded document.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDoc)
	if err != nil {
		t.Fatalf("loading openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	if doc.OpenAPI != "3.1.0" || !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
}

// params makes path templates comparable whatever their parameters are
// called: the mux says {id}, the document {requestId}.
var params = regexp.MustCompile(`\{[^}]*\}`)

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	// Every optional route on, so that the table is whole.
	s := NewServer(Config{Dev: true, Metrics: http.NotFoundHandler(), Receipts: &kannel.Sender{}})
	served := map[string]bool{}
	for _, rt := range s.routeTable() {
		key := rt.method + " " + params.ReplaceAllString(rt.path, "{}")
		if served[key] {
			t.Errorf("route %s is listed twice", rt.pattern())
		}
		served[key] = true
	}
	described := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			described[method+" "+params.ReplaceAllString(path, "{}")] = true
		}
	}
	for key := range served {
		if !described[key] {
			t.Errorf("the server answers %s, which openapi.json does not describe", key)
		}
	}
	for key := range described {
		if !served[key] {
			t.Errorf("openapi.json describes %s, which the server does not answer", key)
		}
	}
}

// The failureCode enum is the list of Fail constants of the domain, so a
// new failure cannot reach clients undocumented.
func TestOpenAPIListsEveryFailureCode(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	var documented []string
	for _, v := range doc.Components.Schemas["ValidationFailure"].Value.Properties["failureCode"].Value.Enum {
		documented = append(documented, v.(string))
	}
	f, err := parser.ParseFile(token.NewFileSet(), "../error.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || len(vs.Values) != 1 || !strings.HasPrefix(vs.Names[0].Name, "Fail") {
			return true
		}
		if lit, ok := vs.Values[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			s, _ := strconv.Unquote(lit.Value)
			declared = append(declared, s)
		}
		return true
	})
	slices.Sort(documented)
	slices.Sort(declared)
	if len(declared) < 10 || !slices.Equal(documented, declared) {
		t.Fatalf("failureCode enum %q\nerror.go declares %q", documented, declared)
	}
}

// exchange is one request to record, and the status it must get.
type exchange struct {
	name   string
	method string
	target string
	body   string
	// edit sets headers; nil sends the account's Basic credentials.
	edit func(r *http.Request)
	want int
	// refused marks a request that deliberately breaks the document
	// (malformed JSON, no credentials): the document must refuse it too.
	refused bool
	// stream marks an endless answer: the request's context ends once
	// the answer's first bytes are written.
	stream bool
}

// cancelOnWrite ends a streaming request once its answer has begun.
type cancelOnWrite struct {
	*httptest.ResponseRecorder
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(b []byte) (int, error) {
	defer w.cancel()
	return w.ResponseRecorder.Write(b)
}

// unavailable is a store whose verification and inbox reads and writes
// fail with err, for the 500 and 503 answers; accounts still work.
type unavailable struct {
	verifyd.Store
	err error
}

func (u unavailable) CreateVerification(context.Context, *verifyd.Verification, *verifyd.Message, []verifyd.Limit) error {
	return u.err
}

func (u unavailable) FindVerification(context.Context, int64, string) (*verifyd.Verification, error) {
	return nil, u.err
}

func (u unavailable) UpdateVerification(context.Context, int64, string, func(*verifyd.Verification) error) (*verifyd.Verification, error) {
	return nil, u.err
}

func (u unavailable) ListInboxMessages(context.Context, string, int) ([]*verifyd.InboxMessage, error) {
	return nil, u.err
}

// openAPIChecker validates recorded traffic against the document, and
// remembers which documented answers it saw.
type openAPIChecker struct {
	t      *testing.T
	doc    *openapi3.T
	router routers.Router
	seen   map[string]bool // "METHOD /path status", paths as the document writes them
}

func newOpenAPIChecker(t *testing.T) *openAPIChecker {
	doc := loadOpenAPI(t)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &openAPIChecker{t: t, doc: doc, router: router, seen: map[string]bool{}}
}

// authenticate accepts a request that presents the scheme's credentials;
// whether they are right is the server's business, not the document's.
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	switch s := in.SecurityScheme; s.Type {
	case "http":
		if strings.HasPrefix(r.Header.Get("Authorization"), "Basic ") {
			return nil
		}
	case "apiKey":
		if r.Header.Get(s.Name) != "" {
			return nil
		}
	}
	return fmt.Errorf("no %s credentials", in.SecuritySchemeName)
}

// run sends x to h and checks the request and the answer against the
// document.
func (c *openAPIChecker) run(t *testing.T, h http.Handler, x exchange, creds func(r *http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	newRequest := func() *http.Request {
		r := httptest.NewRequest(x.method, x.target, strings.NewReader(x.body))
		// Not httptest's example.com, which the inbox refuses; an edit may
		// set another.
		r.Host = "localhost:8080"
		if x.body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		if x.edit != nil {
			x.edit(r)
		} else {
			creds(r)
		}
		return r
	}
	w := httptest.NewRecorder()
	if r := newRequest(); x.stream {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		h.ServeHTTP(&cancelOnWrite{w, cancel}, r.WithContext(ctx))
	} else {
		h.ServeHTTP(w, r)
	}
	if w.Code != x.want {
		t.Fatalf("%s, %s %s: %d %s, want %d", x.name, x.method, x.target, w.Code, w.Body, x.want)
	}

	r := newRequest()
	route, pathParams, err := c.router.FindRoute(r)
	if err != nil {
		t.Fatalf("%s, %s %s: no route in openapi.json: %v", x.name, x.method, x.target, err)
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:                authenticate,
		IncludeResponseStatus:             true,
		MultiError:                        true,
		RejectWhenRequestBodyNotSpecified: true,
		SchemaValidationOptions:           []openapi3.SchemaValidationOption{openapi3.EnableFormatValidation()},
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: pathParams, Route: route, Options: opts}
	err = openapi3filter.ValidateRequest(context.Background(), in)
	switch {
	case x.refused && err == nil:
		t.Errorf("%s, %s %s: openapi.json allows this request, which is meant to break it", x.name, x.method, x.target)
	case !x.refused && err != nil:
		t.Errorf("%s, %s %s: the request does not match openapi.json: %v", x.name, x.method, x.target, err)
	}
	resp := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 w.Code,
		Header:                 w.Header(),
		Options:                opts,
	}
	resp.SetBodyBytes(w.Body.Bytes())
	if err := openapi3filter.ValidateResponse(context.Background(), resp); err != nil {
		t.Errorf("%s, %s %s: the %d answer does not match openapi.json: %v\n%s", x.name, x.method, x.target, w.Code, err, w.Body)
	}
	c.seen[fmt.Sprintf("%s %s %d", route.Method, route.Path, w.Code)] = true
	return w
}

// unseen lists the documented answers no exchange provoked.
func (c *openAPIChecker) unseen() []string {
	var out []string
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status := range op.Responses.Map() {
				if key := method + " " + path + " " + status; !c.seen[key] {
					out = append(out, key)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIMatchesTraffic records requests through the server for every
// route and every answer the document lists, and validates each request and
// answer against the document. It fails on an answer the document does not
// list, and on a documented answer no request provoked.
func TestOpenAPIMatchesTraffic(t *testing.T) {
	t.Parallel()
	c := newOpenAPIChecker(t)
	ctx := context.Background()
	metricsText := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write([]byte("# HELP verifyd_up Whether verifyd is up.\n# TYPE verifyd_up gauge\nverifyd_up 1\n"))
	})
	dev := withConfig(func(cfg *Config) { cfg.Dev, cfg.Metrics = true, metricsText })
	e := newEnv(t, dev, withKannel(t, nil), withSettings(func(s *verifyd.Settings) { s.Limits = map[string]string{"number": "1/1h"} }))
	basic := func(r *http.Request) { r.SetBasicAuth(e.user, e.secret) }
	noCreds := func(*http.Request) {}
	wrongCreds := func(r *http.Request) { r.SetBasicAuth(e.user, "not-the-secret") }
	headerCreds := func(r *http.Request) { r.Header.Set("username", e.user); r.Header.Set("password", e.secret) }
	withKey := func(key string) func(r *http.Request) {
		return func(r *http.Request) { basic(r); r.Header.Set("Idempotency-Key", key) }
	}
	big := `{"to":"447979080215","from":"Test","pad":"` + strings.Repeat("x", 64<<10) + `"}`
	run := func(x exchange) *httptest.ResponseRecorder {
		t.Helper()
		return c.run(t, e.srv, x, basic)
	}

	// Both create paths: every answer of each. Numbers differ per path,
	// because the number limit allows one send per hour.
	for i, path := range []string{"/webapi/verify", "/webapi/verify/sendcode"} {
		n := func(last int) string { return fmt.Sprintf("4479790802%02d", 10*i+last) }
		run(exchange{name: "Created", method: "POST", target: path, body: `{"to":"` + n(0) + `","from":"Test"}`, want: 202})
		run(exchange{name: "CreatedFromArray", method: "POST", target: path, body: `[{"to":"+` + n(1) + `","from":"Test","countryIsoCode":null}]`, want: 202})
		run(exchange{name: "CreatedWithHeaderCredentials", method: "POST", target: path, body: `{"to":"` + n(2) + `","from":"Test","validUntil":"` + e.clock().Add(5*time.Minute).Format("2006-01-02T15:04:05Z07:00") + `"}`, edit: headerCreds, want: 202})
		run(exchange{name: "InvalidFields", method: "POST", target: path, body: `{"to":"12","from":"!","body":"no code here"}`, want: 400})
		run(exchange{name: "InvalidJSON", method: "POST", target: path, body: `{"to":`, want: 400, refused: true})
		run(exchange{name: "Throttled", method: "POST", target: path, body: `{"to":"` + n(0) + `","from":"Test"}`, want: 400})
		run(exchange{name: "NoCredentials", method: "POST", target: path, body: `{"to":"` + n(3) + `"}`, edit: noCreds, want: 401, refused: true})
		run(exchange{name: "WrongCredentials", method: "POST", target: path, body: `{"to":"` + n(3) + `"}`, edit: wrongCreds, want: 401})
		run(exchange{name: "TooLarge", method: "POST", target: path, body: big, want: 413})
		key := "key-" + path
		body := `{"to":"` + n(4) + `","from":"Test"}`
		run(exchange{name: "Idempotent", method: "POST", target: path, body: body, edit: withKey(key), want: 202})
		run(exchange{name: "IdempotentReplay", method: "POST", target: path, body: body, edit: withKey(key), want: 202})
		run(exchange{name: "IdempotentOtherBody", method: "POST", target: path, body: `{"to":"` + n(5) + `","from":"Test"}`, edit: withKey(key), want: 422})
		running := "running-" + path
		if _, err := e.store.BeginIdempotentRequest(ctx, &verifyd.IdempotentRequest{
			AccountID: e.account.ID, Key: running, BodyHash: sha(body), Created: e.clock(),
		}); err != nil {
			t.Fatal(err)
		}
		run(exchange{name: "IdempotentStillRunning", method: "POST", target: path, body: body, edit: withKey(running), want: 409})
	}
	var notSent verifyCode
	decodeInto(t, run(exchange{name: "CreatedNotSent", method: "POST", target: "/webapi/verify", body: `{"to":"` + deadNumber + `","from":"Test"}`, want: 202}), &notSent)
	if notSent.Status != verifyd.CodeNotSent {
		t.Fatalf("a create to the dead number answered %s", notSent.Status)
	}

	// Validate, by PUT and by POST.
	for i, method := range []string{"PUT", "POST"} {
		id, code := e.sendCode(fmt.Sprintf("3361234567%d", i))
		target := "/webapi/verify/" + id + "/validate"
		run(exchange{name: "Wrong", method: method, target: target, body: `{"code":"` + wrongCode(code) + `"}`, want: 200})
		run(exchange{name: "Malformed", method: method, target: target, body: `{"code":"12a"}`, want: 400})
		run(exchange{name: "Missing", method: method, target: target, body: `{}`, want: 400})
		run(exchange{name: "NotJSON", method: method, target: target, body: `code=123456`, want: 400, refused: true})
		run(exchange{name: "TooLarge", method: method, target: target, body: big, want: 413})
		run(exchange{name: "NoCredentials", method: method, target: target, body: `{"code":"123456"}`, edit: noCreds, want: 401, refused: true})
		run(exchange{name: "Verified", method: method, target: target, body: `[{"code":` + strings.TrimLeft(code, "0") + `}]`, want: 200})
		run(exchange{name: "Finished", method: method, target: target, body: `{"code":"` + code + `"}`, want: 204})
		run(exchange{name: "CodeInQuery", method: method, target: target + "?code=" + code, body: `{"code":"` + code + `"}`, want: 400})
		run(exchange{name: "UnknownID", method: method, target: "/webapi/verify/not-a-request-id/validate", body: `{"code":"123456"}`, want: 204})
	}

	// Read and cancel.
	pending := e.create(`{"to":"15417543010","from":"Test"}`).RequestID
	e.text(pending) // claimed: its delivery is Queued with a lease
	verified, code := e.sendCode("15417543011")
	e.validate(verified, code)
	for _, id := range []string{pending, verified, notSent.RequestID} {
		run(exchange{name: "Read", method: "GET", target: "/webapi/verify/" + id, want: 200})
	}
	run(exchange{name: "ReadUnknown", method: "GET", target: "/webapi/verify/0bd57dc3-580c-4c1d-8aee-2ff79bd8633c", want: 404})
	run(exchange{name: "ReadNoCredentials", method: "GET", target: "/webapi/verify/" + pending, edit: noCreds, want: 401, refused: true})
	run(exchange{name: "ReadCredentialsInQuery", method: "GET", target: "/webapi/verify/" + pending + "?password=x", want: 400})
	run(exchange{name: "Cancel", method: "DELETE", target: "/webapi/verify/" + pending, want: 204})
	run(exchange{name: "CancelUnknown", method: "DELETE", target: "/webapi/verify/nothing", want: 204})
	run(exchange{name: "CancelNoCredentials", method: "DELETE", target: "/webapi/verify/" + pending, edit: noCreds, want: 401, refused: true})
	run(exchange{name: "CancelCredentialsInQuery", method: "DELETE", target: "/webapi/verify/" + pending + "?secret=x", want: 400})

	// The routes without credentials, and the query refusal each shares.
	for _, target := range []string{"/healthz", "/readyz", "/openapi.json", "/metrics", "/inbox", "/inbox/messages"} {
		run(exchange{name: "Open", method: "GET", target: target, edit: noCreds, want: 200})
		run(exchange{name: "CredentialsInQuery", method: "GET", target: target + "?password=x", edit: noCreds, want: 400})
	}
	run(exchange{name: "Events", method: "GET", target: "/inbox/events?to=15417543011", edit: noCreds, want: 200, stream: true})
	// A page elsewhere whose domain name was rebound to this server.
	rebound := func(r *http.Request) { noCreds(r); r.Host = "attacker.example:8080" }
	for _, target := range []string{"/inbox", "/inbox/messages", "/inbox/events"} {
		run(exchange{name: "ForeignHost", method: "GET", target: target, edit: rebound, want: 403, stream: true})
	}
	run(exchange{name: "EventsCredentialsInQuery", method: "GET", target: "/inbox/events?password=x", edit: noCreds, want: 400})
	t.Run("TooManyStreams", func(t *testing.T) {
		// Hold every stream slot open, then ask for one more.
		ctx, cancel := context.WithCancel(context.Background())
		var held sync.WaitGroup
		defer func() { cancel(); held.Wait() }()
		for range inboxMaxStreams {
			begun := make(chan struct{})
			held.Go(func() {
				w := &startedWriter{ResponseRecorder: httptest.NewRecorder(), started: begun}
				r := httptest.NewRequest("GET", "/inbox/events", nil).WithContext(ctx)
				r.Host = "localhost:8080"
				e.srv.ServeHTTP(w, r)
			})
			<-begun
		}
		run(exchange{name: "EventsTooMany", method: "GET", target: "/inbox/events", edit: noCreds, want: 503, stream: true})
	})
	if err := e.store.AddInboxMessages(ctx, []*verifyd.InboxMessage{{
		RequestID: verified, To: "15417543011", From: "Test", Created: e.clock(),
		Sealed: e.keyring.Seal(verified, []byte("Your verification code is "+code)),
	}}); err != nil {
		t.Fatal(err)
	}
	run(exchange{name: "InboxMessages", method: "GET", target: "/inbox/messages?to=%2B1+541-754-3011", edit: noCreds, want: 200})

	// Kannel's delivery reports: no account credentials, a token instead.
	ref := "kannel-00112233445566778899aabbccddeeff"
	report := "/sms/receipts/kannel?ref=" + ref + "&token=" + e.token(ref)
	run(exchange{name: "Report", method: "GET", target: report + "&type=1", edit: noCreds, want: 200})
	run(exchange{name: "ReportIntermediate", method: "GET", target: report + "&type=8", edit: noCreds, want: 200})
	run(exchange{name: "ReportNoType", method: "GET", target: report, edit: noCreds, want: 400, refused: true})
	run(exchange{name: "ReportUnknownType", method: "GET", target: report + "&type=3", edit: noCreds, want: 400})
	run(exchange{name: "ReportCredentialsInQuery", method: "GET", target: report + "&type=1&password=x", edit: noCreds, want: 400})
	run(exchange{name: "ReportForged", method: "GET", target: "/sms/receipts/kannel?ref=" + ref + "&token=00&type=1", edit: noCreds, want: 403})
	run(exchange{name: "ReportUnknownRef", method: "GET", target: "/sms/receipts/kannel?ref=x&token=00&type=1", edit: noCreds, want: 404, refused: true})
	failing := newEnv(t, withKannel(t, failingRecorder{errors.New("disk on fire")}))
	c.run(t, failing.srv, exchange{name: "ReportStoreFails", method: "GET", target: report + "&type=1", want: 503}, noCreds)

	// The failures of the dependencies.
	notReady := newEnv(t, dev, withConfig(func(cfg *Config) {
		cfg.Ready = func(context.Context) error { return errors.New("smpp: not bound") }
	}))
	c.run(t, notReady.srv, exchange{name: "NotReady", method: "GET", target: "/readyz", want: 503}, noCreds)
	for _, f := range []struct {
		err  error
		want int
	}{
		{errors.New("disk on fire"), 500},
		{verifyd.Errorf(verifyd.EUNAVAILABLE, "the database does not answer"), 503},
	} {
		b := newEnv(t, dev, withConfig(func(cfg *Config) { cfg.Store = unavailable{cfg.Store, f.err} }))
		creds := func(r *http.Request) { r.SetBasicAuth(b.user, b.secret) }
		id := "0bd57dc3-580c-4c1d-8aee-2ff79bd8633c"
		for _, x := range []exchange{
			{method: "POST", target: "/webapi/verify", body: `{"to":"447979080215","from":"Test"}`},
			{method: "POST", target: "/webapi/verify/sendcode", body: `{"to":"447979080215","from":"Test"}`},
			{method: "PUT", target: "/webapi/verify/" + id + "/validate", body: `{"code":"123456"}`},
			{method: "POST", target: "/webapi/verify/" + id + "/validate", body: `{"code":"123456"}`},
			{method: "GET", target: "/webapi/verify/" + id},
			{method: "DELETE", target: "/webapi/verify/" + id},
			{method: "GET", target: "/inbox/messages", edit: noCreds},
		} {
			x.name, x.want = fmt.Sprintf("StoreFails%d", f.want), f.want
			c.run(t, b.srv, x, creds)
		}
	}

	if missing := c.unseen(); len(missing) > 0 {
		t.Errorf("openapi.json lists answers no recorded request provoked (provoke them, or drop them from the document):\n%s",
			strings.Join(missing, "\n"))
	}
}

// startedWriter closes started on its answer's first write.
type startedWriter struct {
	*httptest.ResponseRecorder
	started chan struct{}
	once    sync.Once
}

func (w *startedWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseRecorder.Write(b)
	w.once.Do(func() { close(w.started) })
	return n, err
}
