package client_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"verifyd"
	"verifyd/client"
)

// seen is one request as the fake server received it.
type seen struct {
	method, path, rawQuery string
	header                 http.Header
	body                   []byte
}

// fake is an httptest server that records each request and answers with
// the next of its canned answers.
type fake struct {
	mu       sync.Mutex
	requests []seen
	answer   func(w http.ResponseWriter, r *http.Request)
	srv      *httptest.Server
}

func newFake(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) (*fake, *client.Client) {
	t.Helper()
	f := &fake{answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.requests = append(f.requests, seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), b})
		f.mu.Unlock()
		f.answer(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f, &client.Client{BaseURL: f.srv.URL, User: "app", Password: "s3cr:et"}
}

func (f *fake) last(t *testing.T) seen {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		t.Fatal("no request reached the server")
	}
	return f.requests[len(f.requests)-1]
}

func (f *fake) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

// answerWith writes a canned answer.
func answerWith(status int, header map[string]string, body string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

const jsonType = "application/json; charset=utf-8"

var (
	verifyCodeJSON = `{"requestId":"0bd57dc3-580c-4c1d-8aee-2ff79bd8633c","phoneNumber":"447979080215","status":"CodeNotVerified","numberStatus":"On","created":"2015-10-21T13:28:06.419Z"}` + "\n"
	verifiedJSON   = `{"requestId":"0bd57dc3-580c-4c1d-8aee-2ff79bd8633c","phoneNumber":"447979080215","status":"CodeVerified","numberStatus":"On","created":"2015-10-21T13:28:06.419Z","verified":"2015-10-21T13:29:00.001Z"}` + "\n"
	recordJSON     = `{"requestId":"0bd57dc3-580c-4c1d-8aee-2ff79bd8633c","phoneNumber":"447979080215","state":"NotSent","numberStatus":"Dead","created":"2015-10-21T13:28:06.419Z","validUntil":"2015-10-21T13:38:06.419Z","attemptsRemaining":5,"delivery":null}` + "\n"
	id             = "0bd57dc3-580c-4c1d-8aee-2ff79bd8633c"
)

// checkCommon checks what every request must carry: Basic credentials in
// the header and nowhere else, Accept, and a JSON Content-Type exactly when
// there is a body.
func checkCommon(t *testing.T, r seen) {
	t.Helper()
	if got, want := r.header.Get("Authorization"), "Basic "+base64.StdEncoding.EncodeToString([]byte("app:s3cr:et")); got != want {
		t.Errorf("Authorization %q, want %q", got, want)
	}
	if r.rawQuery != "" || strings.Contains(r.path, "s3cr") {
		t.Errorf("credentials or a query in the URL: %s?%s", r.path, r.rawQuery)
	}
	if r.header.Get("Accept") != "application/json" {
		t.Errorf("Accept %q", r.header.Get("Accept"))
	}
	if ct := r.header.Get("Content-Type"); (len(r.body) > 0) != (ct == "application/json") {
		t.Errorf("Content-Type %q with a body of %d bytes", ct, len(r.body))
	}
}

// bodyKeys decodes a request body into its top-level fields.
func bodyKeys(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	return m
}

func TestWireRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("SendEveryField", func(t *testing.T) {
		f, c := newFake(t, answerWith(202, map[string]string{"Content-Type": jsonType}, verifyCodeJSON))
		until := time.Date(2015, 10, 21, 15, 38, 6, 419_000_000, time.FixedZone("", 2*3600))
		v, err := c.Send(ctx, client.SendRequest{To: "447979080215", From: "Shop", CountryIsoCode: "GBR",
			Body: "Code {{code}}", ValidUntil: &until, IdempotencyKey: "order-1"})
		if err != nil || v.RequestID != id || v.Replayed || v.Created.IsZero() {
			t.Fatalf("%+v %v", v, err)
		}
		r := f.last(t)
		checkCommon(t, r)
		if r.method != "POST" || r.path != "/webapi/verify" {
			t.Errorf("%s %s", r.method, r.path)
		}
		if r.header.Get("Idempotency-Key") != "order-1" {
			t.Errorf("Idempotency-Key %q", r.header.Get("Idempotency-Key"))
		}
		m := bodyKeys(t, r.body)
		want := map[string]any{"to": "447979080215", "from": "Shop", "countryIsoCode": "GBR", "body": "Code {{code}}"}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s = %v, want %v", k, m[k], v)
			}
		}
		got, err := time.Parse(time.RFC3339Nano, m["validUntil"].(string))
		if err != nil || !got.Equal(until) {
			t.Errorf("validUntil %v (%v), want %v", m["validUntil"], err, until)
		}
		if len(m) != 5 {
			t.Errorf("body has fields %v", m)
		}
	})

	t.Run("SendOnlyTo", func(t *testing.T) {
		f, c := newFake(t, answerWith(202, map[string]string{"Content-Type": jsonType, "Idempotent-Replayed": "true"}, verifyCodeJSON))
		v, err := c.Send(ctx, client.SendRequest{To: "447979080215"})
		if err != nil || !v.Replayed {
			t.Fatalf("%+v %v", v, err)
		}
		r := f.last(t)
		checkCommon(t, r)
		if m := bodyKeys(t, r.body); len(m) != 1 || m["to"] != "447979080215" {
			t.Errorf("body %s, want only to", r.body)
		}
		if _, ok := r.header["Idempotency-Key"]; ok {
			t.Error("an Idempotency-Key was sent without one being set")
		}
	})

	t.Run("Validate", func(t *testing.T) {
		f, c := newFake(t, answerWith(200, map[string]string{"Content-Type": jsonType}, verifiedJSON))
		v, err := c.Validate(ctx, id, "012345")
		if err != nil || v.Status != client.CodeVerified || v.Verified == nil || v.Verified.Nanosecond() != 1_000_000 {
			t.Fatalf("%+v %v", v, err)
		}
		r := f.last(t)
		checkCommon(t, r)
		if r.method != "PUT" || r.path != "/webapi/verify/"+id+"/validate" {
			t.Errorf("%s %s", r.method, r.path)
		}
		if m := bodyKeys(t, r.body); len(m) != 1 || m["code"] != "012345" {
			t.Errorf("body %s, want the code as a string", r.body)
		}
	})

	t.Run("ValidateFinished", func(t *testing.T) {
		_, c := newFake(t, answerWith(204, nil, ""))
		v, err := c.Validate(ctx, id, "123456")
		if err != nil || v.Status != client.Finished || v.RequestID != id {
			t.Fatalf("%+v %v", v, err)
		}
	})

	t.Run("Get", func(t *testing.T) {
		f, c := newFake(t, answerWith(200, map[string]string{"Content-Type": jsonType}, recordJSON))
		rec, err := c.Get(ctx, id)
		if err != nil || rec.State != "NotSent" || rec.Delivery != nil || rec.AttemptsRemaining != 5 {
			t.Fatalf("%+v %v", rec, err)
		}
		r := f.last(t)
		checkCommon(t, r)
		if r.method != "GET" || r.path != "/webapi/verify/"+id || len(r.body) != 0 {
			t.Errorf("%s %s %q", r.method, r.path, r.body)
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		f, c := newFake(t, answerWith(204, nil, ""))
		if err := c.Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
		r := f.last(t)
		checkCommon(t, r)
		if r.method != "DELETE" || r.path != "/webapi/verify/"+id || len(r.body) != 0 {
			t.Errorf("%s %s %q", r.method, r.path, r.body)
		}
	})

	t.Run("BaseURLWithPrefix", func(t *testing.T) {
		f, c := newFake(t, answerWith(204, nil, ""))
		c.BaseURL += "/verify-api/"
		if err := c.Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
		if r := f.last(t); r.path != "/verify-api/webapi/verify/"+id {
			t.Errorf("path %s", r.path)
		}
	})

	t.Run("RequestIDEscaped", func(t *testing.T) {
		f, c := newFake(t, answerWith(204, nil, ""))
		if err := c.Cancel(ctx, "a b?c#d%"); err != nil {
			t.Fatal(err)
		}
		if r := f.last(t); r.path != "/webapi/verify/a%20b%3Fc%23d%25" || r.rawQuery != "" {
			t.Errorf("path %s?%s", r.path, r.rawQuery)
		}
	})
}

// TestWireRequestIDsOffTheRoute checks the ids that would not reach the
// server as one path segment: each is answered as the server answers a
// malformed id, and nothing is sent.
func TestWireRequestIDsOffTheRoute(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f, c := newFake(t, answerWith(500, nil, "must not be asked"))
	for _, bad := range []string{"", ".", "..", "x/validate", "../verify"} {
		if v, err := c.Validate(ctx, bad, "123456"); err != nil || v.Status != client.Finished {
			t.Errorf("Validate(%q): %+v %v, want Finished", bad, v, err)
		}
		if _, err := c.Get(ctx, bad); err == nil {
			t.Errorf("Get(%q) found a record", bad)
		} else if e, ok := client.AsError(err); !ok || e.StatusCode != 404 || e.Code != "not_found" {
			t.Errorf("Get(%q): %v, want a 404", bad, err)
		}
		if err := c.Cancel(ctx, bad); err != nil {
			t.Errorf("Cancel(%q): %v", bad, err)
		}
	}
	if n := f.count(); n != 0 {
		t.Errorf("%d requests were sent", n)
	}
}

func TestWireErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		status  int
		header  map[string]string
		body    string
		call    string // send, validate, get or cancel
		want    client.Error
		failure string
	}{
		{name: "ErrThrottled", status: 400, header: map[string]string{"Content-Type": jsonType, "Retry-After": "1800"},
			body: `[{"property":"to","failureCode":"Throttled","details":"Too many codes."}]`, call: "send",
			want: client.Error{StatusCode: 400, RetryAfter: 30 * time.Minute}, failure: verifyd.FailThrottled},
		{name: "ErrCodeInvalid", status: 400, header: map[string]string{"Content-Type": jsonType},
			body: `[{"property":"code","failureCode":"CodeInvalid","details":"code must be digits."}]`, call: "validate",
			want: client.Error{StatusCode: 400}, failure: verifyd.FailCodeInvalid},
		{name: "ErrTooLarge", status: 413, header: map[string]string{"Content-Type": jsonType},
			body: `[{"property":"","failureCode":"InvalidJson","details":"The request body is larger than 64 KiB."}]`, call: "send",
			want: client.Error{StatusCode: 413}, failure: verifyd.FailInvalidJSON},
		{name: "ErrUnauthorized", status: 401, header: map[string]string{"Content-Type": "text/plain; charset=utf-8", "WWW-Authenticate": `Basic realm="verifyd"`},
			body: "No authorization header supplied or invalid username or password", call: "get",
			want: client.Error{StatusCode: 401, Message: "No authorization header supplied or invalid username or password"}},
		{name: "ErrNotFound", status: 404, header: map[string]string{"Content-Type": jsonType},
			body: `{"code":"not_found","message":"There is no verification with that requestId."}` + "\n", call: "get",
			want: client.Error{StatusCode: 404, Code: "not_found", Message: "There is no verification with that requestId."}},
		{name: "ErrMethodNotAllowed", status: 405, header: map[string]string{"Content-Type": jsonType, "Allow": "POST"},
			body: `{"code":"method_not_allowed","message":"This route does not take the DELETE method."}`, call: "cancel",
			want: client.Error{StatusCode: 405, Code: "method_not_allowed", Message: "This route does not take the DELETE method."}},
		{name: "ErrStillRunning", status: 409, header: map[string]string{"Content-Type": jsonType},
			body: `{"code":"conflict","message":"A request with this Idempotency-Key is still running; retry later."}`, call: "send",
			want: client.Error{StatusCode: 409, Code: "conflict", Message: "A request with this Idempotency-Key is still running; retry later."}},
		{name: "ErrMismatch", status: 422, header: map[string]string{"Content-Type": jsonType},
			body: `{"code":"mismatch","message":"This Idempotency-Key was used with a different request body."}`, call: "send",
			want: client.Error{StatusCode: 422, Code: "mismatch", Message: "This Idempotency-Key was used with a different request body."}},
		{name: "ErrInternal", status: 500, header: map[string]string{"Content-Type": jsonType},
			body: `{"code":"internal","message":"internal error"}`, call: "validate",
			want: client.Error{StatusCode: 500, Code: "internal", Message: "internal error"}},
		{name: "ErrUnavailableRetryAfterSeconds", status: 503, header: map[string]string{"Content-Type": jsonType, "Retry-After": "7"},
			body: `{"code":"unavailable","message":"not ready"}`, call: "cancel",
			want: client.Error{StatusCode: 503, Code: "unavailable", Message: "not ready", RetryAfter: 7 * time.Second}},
		{name: "ErrProxyHTML", status: 502, header: map[string]string{"Content-Type": "text/html"},
			body: "<html>Bad Gateway</html>\n", call: "send",
			want: client.Error{StatusCode: 502, Message: "<html>Bad Gateway</html>"}},
		{name: "ErrUnexpectedSuccess", status: 200, header: map[string]string{"Content-Type": jsonType},
			body: verifyCodeJSON, call: "send",
			want: client.Error{StatusCode: 200, Message: "unexpected status"}},
		{name: "ErrUnexpectedNoContent", status: 204, call: "get",
			want: client.Error{StatusCode: 204, Message: "unexpected status"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, c := newFake(t, answerWith(tc.status, tc.header, tc.body))
			var err error
			switch tc.call {
			case "send":
				_, err = c.Send(ctx, client.SendRequest{To: "447979080215"})
			case "validate":
				_, err = c.Validate(ctx, id, "123456")
			case "get":
				_, err = c.Get(ctx, id)
			case "cancel":
				err = c.Cancel(ctx, id)
			}
			e, ok := client.AsError(err)
			if !ok {
				t.Fatalf("%v, want an *Error", err)
			}
			if e.StatusCode != tc.want.StatusCode || e.Code != tc.want.Code || e.Message != tc.want.Message || e.RetryAfter != tc.want.RetryAfter {
				t.Errorf("got  %+v\nwant %+v", *e, tc.want)
			}
			if tc.failure != "" {
				if len(e.Failures) != 1 || !e.Has(tc.failure) || e.Failures[0].Details == "" {
					t.Errorf("failures %+v, want one %s", e.Failures, tc.failure)
				}
			} else if len(e.Failures) != 0 {
				t.Errorf("failures %+v on a %d", e.Failures, e.StatusCode)
			}
			if !strings.Contains(e.Error(), "verifyd: ") || strings.Contains(e.Error(), "s3cr") {
				t.Errorf("Error() = %q", e.Error())
			}
		})
	}

	t.Run("RetryAfterDate", func(t *testing.T) {
		t.Parallel()
		at := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
		_, c := newFake(t, answerWith(503, map[string]string{"Retry-After": at}, `{"code":"unavailable","message":"x"}`))
		e, _ := client.AsError(c.Cancel(ctx, id))
		if e == nil || e.RetryAfter < 85*time.Second || e.RetryAfter > 91*time.Second {
			t.Fatalf("%+v", e)
		}
	})

	t.Run("ErrNotJSONSuccess", func(t *testing.T) {
		t.Parallel()
		_, c := newFake(t, answerWith(200, map[string]string{"Content-Type": "text/html"}, "<html>login</html>"))
		if _, err := c.Get(ctx, id); err == nil || !strings.Contains(err.Error(), "reading the 200 answer") {
			t.Fatalf("%v", err)
		}
	})
}

// TestWireBaseURL checks that a BaseURL carrying credentials, a query or a
// fragment, or one that is not http(s), is refused before anything is sent.
func TestWireBaseURL(t *testing.T) {
	t.Parallel()
	f, c := newFake(t, answerWith(204, nil, ""))
	host := strings.TrimPrefix(f.srv.URL, "http://")
	for _, base := range []string{
		"http://app:s3cr:et@" + host,
		"http://app@" + host,
		// Unparseable: the parser's error quotes the whole URL.
		"http://app:s3cr@" + host + ":port",
		"http://app:s3cr@bad host",
		"http://app:s3cr@" + host + "/%zz",
		f.srv.URL + "/?password=s3cr",
		f.srv.URL + "?",
		f.srv.URL + "#x",
		"ftp://" + host,
		host,
		"http://",
	} {
		bad := *c
		bad.BaseURL = base
		if err := bad.Cancel(context.Background(), id); err == nil {
			t.Errorf("BaseURL %q was used", base)
		} else if strings.Contains(err.Error(), "s3cr") {
			t.Errorf("BaseURL %q: the error shows the secret: %v", base, err)
		}
		if _, err := bad.Send(context.Background(), client.SendRequest{To: "447979080215"}); err == nil {
			t.Errorf("BaseURL %q was used by Send", base)
		}
		// An id that is not one path segment is answered without a
		// request, but a bad BaseURL is still an error, with no result.
		if got, err := bad.Validate(context.Background(), "a/b", "123456"); err == nil || got != nil {
			t.Errorf("BaseURL %q: Validate of a malformed id = %+v, %v; want no result and an error", base, got, err)
		}
	}
	if n := f.count(); n != 0 {
		t.Errorf("%d requests were sent", n)
	}
}

// TestWireTimeouts checks that a server that never answers is given up on,
// by the HTTP client's timeout or by the context.
func TestWireTimeouts(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	_, c := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)

	t.Run("HTTPTimeout", func(t *testing.T) {
		slow := *c
		slow.HTTP = &http.Client{Timeout: 100 * time.Millisecond}
		_, err := slow.Send(context.Background(), client.SendRequest{To: "447979080215"})
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("%v, want a timeout", err)
		}
	})

	t.Run("ContextDeadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := c.Validate(ctx, id, "123456")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%v, want the context's deadline", err)
		}
	})
}

// TestClientAnswersOfTheRealServer covers the answers of the real server
// that TestClient does not: a 413, a replayed create, and ids off the route.
func TestClientAnswersOfTheRealServer(t *testing.T) {
	t.Parallel()
	c := server(t)
	ctx := context.Background()

	t.Run("ErrTooLarge", func(t *testing.T) {
		_, err := c.Send(ctx, client.SendRequest{To: "447979080999", Body: strings.Repeat("x", 70<<10) + "{{code}}"})
		e, ok := client.AsError(err)
		if !ok || e.StatusCode != 413 || !e.Has(verifyd.FailInvalidJSON) {
			t.Fatalf("%v (%+v)", err, e)
		}
	})

	t.Run("Replayed", func(t *testing.T) {
		r := client.SendRequest{To: "447979080999", From: "Shop", IdempotencyKey: "replay-1"}
		first, err := c.Send(ctx, r)
		if err != nil || first.Replayed {
			t.Fatalf("%+v %v", first, err)
		}
		again, err := c.Send(ctx, r)
		if err != nil || !again.Replayed || again.RequestID != first.RequestID {
			t.Fatalf("%+v %v", again, err)
		}
	})

	t.Run("ErrMismatch", func(t *testing.T) {
		if _, err := c.Send(ctx, client.SendRequest{To: "447979080999", From: "Shop", IdempotencyKey: "mismatch-1"}); err != nil {
			t.Fatal(err)
		}
		_, err := c.Send(ctx, client.SendRequest{To: "447979080999", From: "Other", IdempotencyKey: "mismatch-1"})
		if e, ok := client.AsError(err); !ok || e.StatusCode != 422 || e.Code != "mismatch" || e.Message == "" {
			t.Fatalf("%v", err)
		}
	})

	t.Run("IDsOffTheRoute", func(t *testing.T) {
		v, err := c.Send(ctx, client.SendRequest{To: "447979080999", From: "Shop"})
		if err != nil {
			t.Fatal(err)
		}
		// Sent as they are, "x/../ID" would name this very request once the
		// server cleaned the path, and ID+"/.." the create route.
		for _, bad := range []string{"", "..", v.RequestID + "/..", "x/../" + v.RequestID} {
			if got, err := c.Validate(ctx, bad, "424242"); err != nil || got.Status != client.Finished {
				t.Errorf("Validate(%q): %+v %v", bad, got, err)
			}
			if err := c.Cancel(ctx, bad); err != nil {
				t.Errorf("Cancel(%q): %v", bad, err)
			}
		}
		rec, err := c.Get(ctx, v.RequestID)
		if err != nil || rec.State != "Pending" || rec.AttemptsRemaining != 5 {
			t.Fatalf("the request was touched: %+v %v", rec, err)
		}
		if !slices.Contains([]string{"Delivered", "Queued"}, rec.Delivery.State) {
			t.Errorf("delivery %+v", rec.Delivery)
		}
	})
}
