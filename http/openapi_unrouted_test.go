package http

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// checkBody checks body against schema as far as a client relies on it:
// the JSON type, the required keys, no key the schema does not list when it
// allows no others, and the enum or const of each string property.
func checkBody(t *testing.T, doc jsonDoc, schema any, body []byte) {
	t.Helper()
	s := doc.deref(t, schema)
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("body %s is not JSON: %v", body, err)
	}
	checkValue(t, doc, s, v, "body")
}

func checkValue(t *testing.T, doc jsonDoc, s map[string]any, v any, at string) {
	t.Helper()
	switch s["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s: %v is not an object", at, v)
			return
		}
		props := asMap(s["properties"])
		for _, r := range asSlice(s["required"]) {
			if _, ok := m[r.(string)]; !ok {
				t.Errorf("%s: required key %q is missing from %v", at, r, m)
			}
		}
		for k, kv := range m {
			ps, ok := props[k]
			if !ok {
				if s["additionalProperties"] == false {
					t.Errorf("%s: key %q is not in the schema", at, k)
				}
				continue
			}
			checkValue(t, doc, doc.deref(t, ps), kv, at+"."+k)
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			t.Errorf("%s: %v is not an array", at, v)
			return
		}
		for _, item := range a {
			checkValue(t, doc, doc.deref(t, s["items"]), item, at+"[]")
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			t.Errorf("%s: %v is not a string", at, v)
			return
		}
		if enum := asSlice(s["enum"]); len(enum) > 0 && !slices.Contains(enum, any(str)) {
			t.Errorf("%s: %q is not one of %v", at, str, enum)
		}
		if c, ok := s["const"]; ok && c != str {
			t.Errorf("%s: %q, want %q", at, str, c)
		}
	}
}

// documentedMethods returns the methods, in upper case, that the document
// lists for a concrete path: those of every documented path it matches, so
// that /webapi/verify/sendcode also takes the GET and DELETE of
// /webapi/verify/{requestId}, as the server's mux does.
func documentedMethods(doc jsonDoc, target string) []string {
	var out []string
	for path, item := range asMap(doc["paths"]) {
		quoted := strings.ReplaceAll(regexp.QuoteMeta(params.ReplaceAllString(path, "\x00")), "\x00", "[^/]+")
		re := regexp.MustCompile("^" + quoted + "$")
		if !re.MatchString(target) {
			continue
		}
		for _, m := range httpMethods {
			if _, ok := asMap(item)[m]; ok && !slices.Contains(out, strings.ToUpper(m)) {
				out = append(out, strings.ToUpper(m))
			}
		}
	}
	return out
}

// TestOpenAPIUnroutedAnswers checks what the document's description and its
// MethodNotAllowed and NoSuchRoute responses say of the answers no
// operation lists: every other method on every served path is a 405 whose
// Allow header names exactly the documented methods, every GET route takes
// HEAD, and an unknown path is a 404, all without credentials.
func TestOpenAPIUnroutedAnswers(t *testing.T) {
	t.Parallel()
	doc := decodeOpenAPI(t)
	responses := asMap(asMap(doc["components"])["responses"])
	schemaOf := func(name string) any {
		r := doc.deref(t, responses[name])
		return asMap(asMap(r["content"])["application/json"])["schema"]
	}
	allowHeader := asMap(doc.deref(t, responses["MethodNotAllowed"])["headers"])["Allow"]
	if allowHeader == nil || asMap(allowHeader)["required"] != true {
		t.Fatal("MethodNotAllowed does not require an Allow header")
	}

	e := newEnv(t, withConfig(func(cfg *Config) { cfg.Dev, cfg.Metrics = true, http.NotFoundHandler() }))
	id, _ := e.sendCode("447979080215")
	targets := map[string]bool{}
	for _, rt := range e.srv.routeTable() {
		targets[strings.ReplaceAll(rt.path, "{id}", id)] = true
	}

	for target := range targets {
		allowed := documentedMethods(doc, target)
		if slices.Contains(allowed, "GET") {
			allowed = append(allowed, "HEAD")
		}
		slices.Sort(allowed)
		for _, method := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
			switch {
			case method == "HEAD" && slices.Contains(allowed, "HEAD"):
				if strings.HasSuffix(target, "/events") {
					// The GET is an endless stream: the HEAD must end
					// with its headers.
					head := e.do("HEAD", target, "")
					if head.Code != http.StatusOK || head.Header().Get("Content-Type") != "text/event-stream" {
						t.Errorf("HEAD %s: %d %q", target, head.Code, head.Header().Get("Content-Type"))
					}
					continue
				}
				get := e.do("GET", target, "")
				head := e.do("HEAD", target, "")
				if head.Code != get.Code || head.Header().Get("Content-Type") != get.Header().Get("Content-Type") {
					t.Errorf("HEAD %s: %d %q, GET: %d %q", target, head.Code, head.Header().Get("Content-Type"),
						get.Code, get.Header().Get("Content-Type"))
				}
			case slices.Contains(allowed, method):
				// Documented: TestOpenAPIMatchesTraffic checks these answers.
			default:
				w := e.doWith(method, target, "", nil)
				if w.Code != http.StatusMethodNotAllowed {
					t.Errorf("%s %s without credentials: %d %s, want 405", method, target, w.Code, w.Body)
					continue
				}
				pattern := asMap(doc.deref(t, allowHeader)["schema"])["pattern"].(string)
				if !regexp.MustCompile(pattern).MatchString(w.Header().Get("Allow")) {
					t.Errorf("%s %s: Allow %q does not match %s", method, target, w.Header().Get("Allow"), pattern)
				}
				got := strings.Split(w.Header().Get("Allow"), ", ")
				slices.Sort(got)
				if !slices.Equal(got, allowed) {
					t.Errorf("%s %s: Allow %q, the document lists %q", method, target, w.Header().Get("Allow"), allowed)
				}
				if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
					t.Errorf("%s %s: Content-Type %q", method, target, ct)
				}
				checkBody(t, doc, schemaOf("MethodNotAllowed"), w.Body.Bytes())
			}
		}
	}

	for _, target := range []string{"/", "/nope", "/webapi", "/webapi/verify/" + id + "/validate/again", "/inbox/nope"} {
		for _, method := range []string{"GET", "POST"} {
			w := e.doWith(method, target, "", nil)
			if w.Code != http.StatusNotFound {
				t.Errorf("%s %s: %d %s, want 404", method, target, w.Code, w.Body)
				continue
			}
			checkBody(t, doc, schemaOf("NoSuchRoute"), w.Body.Bytes())
		}
	}
}
