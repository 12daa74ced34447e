package http

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The tests in this file read openapi.json with encoding/json alone, so
// that the document's shape is checked by rules written here rather than
// by whatever one library's loader happens to forgive.

// jsonDoc is the document as plain JSON values.
type jsonDoc map[string]any

func decodeOpenAPI(t *testing.T) jsonDoc {
	t.Helper()
	var doc jsonDoc
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	return doc
}

// pointer resolves a local JSON pointer ("#/components/schemas/X").
func (d jsonDoc) pointer(ref string) (any, bool) {
	rest, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, false
	}
	var cur any = map[string]any(d)
	if rest == "" {
		return cur, true
	}
	if !strings.HasPrefix(rest, "/") {
		return nil, false
	}
	for _, tok := range strings.Split(rest[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch v := cur.(type) {
		case map[string]any:
			if cur, ok = v[tok]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// deref follows $ref until it reaches an object without one.
func (d jsonDoc) deref(t *testing.T, v any) map[string]any {
	t.Helper()
	for range 10 {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%v is not an object", v)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		if v, ok = d.pointer(ref); !ok {
			t.Fatalf("$ref %q does not resolve", ref)
		}
	}
	t.Fatalf("$ref chain too long at %v", v)
	return nil
}

// walk calls fn on every object in v with its JSON pointer.
func walk(v any, at string, fn func(at string, m map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		fn(at, v)
		for k, c := range v {
			walk(c, at+"/"+strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1"), fn)
		}
	case []any:
		for i, c := range v {
			walk(c, at+"/"+strconv.Itoa(i), fn)
		}
	}
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// onlyKeys reports the keys of m that are neither in allowed nor x- extensions.
func onlyKeys(m map[string]any, allowed ...string) []string {
	var bad []string
	for _, k := range keysOf(m) {
		if !slices.Contains(allowed, k) && !strings.HasPrefix(k, "x-") {
			bad = append(bad, k)
		}
	}
	return bad
}

var (
	httpMethods   = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
	pathTemplate  = regexp.MustCompile(`\{([^}/]+)\}`)
	statusPattern = regexp.MustCompile(`^([1-5][0-9][0-9]|[1-5]XX|default)$`)
)

func TestOpenAPIStructure(t *testing.T) {
	t.Parallel()
	doc := decodeOpenAPI(t)

	t.Run("TopLevel", func(t *testing.T) {
		if bad := onlyKeys(doc, "openapi", "info", "jsonSchemaDialect", "servers", "paths", "webhooks",
			"components", "security", "tags", "externalDocs"); len(bad) > 0 {
			t.Errorf("unknown top-level keys %q", bad)
		}
		if doc["openapi"] != "3.1.0" {
			t.Errorf("openapi = %v, want 3.1.0 (API.md promises OpenAPI 3.1)", doc["openapi"])
		}
		info, _ := doc["info"].(map[string]any)
		if title, _ := info["title"].(string); title == "" {
			t.Error("info.title is missing")
		}
		if version, _ := info["version"].(string); version == "" {
			t.Error("info.version is missing")
		}
		if lic, ok := info["license"].(map[string]any); ok && lic["name"] == nil {
			t.Error("info.license has no name")
		}
		comps, _ := doc["components"].(map[string]any)
		if bad := onlyKeys(comps, "schemas", "responses", "parameters", "examples", "requestBodies",
			"headers", "securitySchemes", "links", "callbacks", "pathItems"); len(bad) > 0 {
			t.Errorf("unknown components keys %q", bad)
		}
		for kind, v := range comps {
			for name := range v.(map[string]any) {
				if !regexp.MustCompile(`^[a-zA-Z0-9.\-_]+$`).MatchString(name) {
					t.Errorf("components.%s name %q is not allowed", kind, name)
				}
			}
		}
	})

	t.Run("RefsResolve", func(t *testing.T) {
		walk(map[string]any(doc), "#", func(at string, m map[string]any) {
			ref, ok := m["$ref"]
			if !ok {
				return
			}
			s, ok := ref.(string)
			if !ok {
				t.Errorf("%s: $ref is %T, not a string", at, ref)
				return
			}
			if !strings.HasPrefix(s, "#/components/") {
				t.Errorf("%s: $ref %q is not a local component", at, s)
			}
			if _, ok := doc.pointer(s); !ok {
				t.Errorf("%s: $ref %q does not resolve", at, s)
			}
		})
	})

	t.Run("Operations", func(t *testing.T) {
		paths, _ := doc["paths"].(map[string]any)
		if len(paths) == 0 {
			t.Fatal("no paths")
		}
		schemes, _ := doc["components"].(map[string]any)["securitySchemes"].(map[string]any)
		tags := map[string]bool{}
		for _, tag := range doc["tags"].([]any) {
			tags[tag.(map[string]any)["name"].(string)] = true
		}
		opIDs := map[string]string{}
		for path, pv := range paths {
			item := pv.(map[string]any)
			bare := pathTemplate.ReplaceAllString(path, "{}")
			if !strings.HasPrefix(path, "/") || (path != "/" && strings.HasSuffix(path, "/")) || bare != strings.ToLower(bare) {
				t.Errorf("path %q: want a lowercase path with no trailing slash (the server matches after normalising)", path)
			}
			if bad := onlyKeys(item, append(slices.Clone(httpMethods), "$ref", "summary", "description", "servers", "parameters")...); len(bad) > 0 {
				t.Errorf("%s: unknown keys %q", path, bad)
			}
			var templated []string
			for _, m := range pathTemplate.FindAllStringSubmatch(path, -1) {
				templated = append(templated, m[1])
			}
			pathLevel := declaredParams(t, doc, item["parameters"])
			for _, method := range httpMethods {
				ov, ok := item[method]
				if !ok {
					continue
				}
				op := ov.(map[string]any)
				where := strings.ToUpper(method) + " " + path
				if bad := onlyKeys(op, "tags", "summary", "description", "externalDocs", "operationId", "parameters",
					"requestBody", "responses", "callbacks", "deprecated", "security", "servers"); len(bad) > 0 {
					t.Errorf("%s: unknown keys %q", where, bad)
				}
				if id, _ := op["operationId"].(string); id == "" {
					t.Errorf("%s: no operationId", where)
				} else if prev, dup := opIDs[id]; dup {
					t.Errorf("%s: operationId %q is also %s's", where, id, prev)
				} else {
					opIDs[id] = where
				}
				for _, tag := range asSlice(op["tags"]) {
					if !tags[tag.(string)] {
						t.Errorf("%s: tag %q is not declared", where, tag)
					}
				}

				// Every path template parameter is declared in: path,
				// required, and no in: path parameter is left over.
				params := declaredParams(t, doc, op["parameters"])
				for k, p := range pathLevel {
					if _, ok := params[k]; !ok {
						params[k] = p
					}
				}
				for _, name := range templated {
					p, ok := params["path "+name]
					if !ok {
						t.Errorf("%s: path parameter %q is not declared", where, name)
					} else if p["required"] != true {
						t.Errorf("%s: path parameter %q is not required: true", where, name)
					}
				}
				for k, p := range params {
					if p["in"] == "path" && !slices.Contains(templated, p["name"].(string)) {
						t.Errorf("%s: declares path parameter %q not in the path", where, p["name"])
					}
					if _, ok := p["schema"]; !ok {
						if _, ok := p["content"]; !ok {
							t.Errorf("%s: parameter %s has no schema", where, k)
						}
					}
				}

				// Security names defined schemes.
				for _, req := range asSlice(op["security"]) {
					for name := range req.(map[string]any) {
						if _, ok := schemes[name]; !ok {
							t.Errorf("%s: security scheme %q is not defined", where, name)
						}
					}
				}

				if rb, ok := op["requestBody"]; ok {
					body := doc.deref(t, rb)
					if content, _ := body["content"].(map[string]any); len(content) == 0 {
						t.Errorf("%s: requestBody has no content", where)
					}
				}

				responses, _ := op["responses"].(map[string]any)
				if len(responses) == 0 {
					t.Errorf("%s: no responses", where)
				}
				for status, rv := range responses {
					if !statusPattern.MatchString(status) {
						t.Errorf("%s: response key %q is not a status", where, status)
						continue
					}
					resp := doc.deref(t, rv)
					if d, _ := resp["description"].(string); d == "" {
						t.Errorf("%s %s: response has no description", where, status)
					}
					if bad := onlyKeys(resp, "description", "headers", "content", "links"); len(bad) > 0 {
						t.Errorf("%s %s: unknown keys %q", where, status, bad)
					}
					_, hasContent := resp["content"]
					switch {
					case status == "204" && hasContent:
						t.Errorf("%s 204: a 204 has no body, yet content is described", where)
					case status != "204" && !hasContent && method != "head":
						t.Errorf("%s %s: no content described", where, status)
					}
					for name, hv := range asMap(resp["headers"]) {
						h := doc.deref(t, hv)
						if strings.EqualFold(name, "Content-Type") {
							t.Errorf("%s %s: Content-Type is described as a header (it is ignored there)", where, status)
						}
						if _, ok := h["schema"]; !ok {
							t.Errorf("%s %s: header %s has no schema", where, status, name)
						}
					}
				}
			}
		}
	})

	t.Run("Schemas", func(t *testing.T) {
		walk(map[string]any(doc), "#", func(at string, m map[string]any) {
			props, hasProps := m["properties"].(map[string]any)
			req := asSlice(m["required"])
			if !hasProps || len(req) == 0 {
				return
			}
			for _, r := range req {
				if _, ok := props[r.(string)]; !ok {
					t.Errorf("%s: required %q is not among its properties", at, r)
				}
			}
		})
	})
}

// declaredParams resolves a parameters list, keyed "in name".
func declaredParams(t *testing.T, doc jsonDoc, v any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, pv := range asSlice(v) {
		p := doc.deref(t, pv)
		in, _ := p["in"].(string)
		name, _ := p["name"].(string)
		if !slices.Contains([]string{"path", "query", "header", "cookie"}, in) || name == "" {
			t.Errorf("parameter %v: bad in or name", p)
			continue
		}
		key := fmt.Sprintf("%s %s", in, name)
		if _, dup := out[key]; dup {
			t.Errorf("parameter %s is declared twice", key)
		}
		out[key] = p
	}
	return out
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
