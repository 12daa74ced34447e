package http

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestOpenAPIIdempotencyKey checks the document's Idempotency-Key against
// what the server takes and refuses, and that a 400, which the document
// lists no Idempotent-Replayed for, is never replayed.
func TestOpenAPIIdempotencyKey(t *testing.T) {
	t.Parallel()
	doc := decodeOpenAPI(t)
	comps := asMap(doc["components"])
	schema := asMap(asMap(asMap(comps["parameters"])["Idempotency-Key"])["schema"])
	pattern := regexp.MustCompile(schema["pattern"].(string))
	maxLen := int(schema["maxLength"].(float64))
	e := newEnv(t)
	send := func(key, body string) *http.Response {
		t.Helper()
		w := e.doWith("POST", "/webapi/verify", body, func(r *http.Request) {
			r.SetBasicAuth(e.user, e.secret)
			r.Header.Set("Idempotency-Key", key)
		})
		return w.Result()
	}

	t.Run("KeysTheDocumentAllows", func(t *testing.T) {
		for i, key := range []string{"a", "order 42/x", "~!@#$%^&*()", strings.Repeat("k", maxLen)} {
			if !pattern.MatchString(key) {
				t.Fatalf("the document refuses %q", key)
			}
			if resp := send(key, fmt.Sprintf(`{"to":"4479790803%02d","from":"Test"}`, 10+i)); resp.StatusCode != http.StatusAccepted {
				t.Errorf("key %q: %d, want 202", key, resp.StatusCode)
			}
		}
	})

	t.Run("KeysTheDocumentRefuses", func(t *testing.T) {
		for _, key := range []string{"tab\there", "é", "\x7f", strings.Repeat("k", maxLen+1)} {
			if pattern.MatchString(key) && len(key) <= maxLen {
				t.Fatalf("the document allows %q", key)
			}
			resp := send(key, `{"to":"447979080320","from":"Test"}`)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("key %q: %d, want 400", key, resp.StatusCode)
			}
		}
	})

	t.Run("BadRequestIsNotReplayed", func(t *testing.T) {
		headers := asMap(doc.deref(t, comps["responses"].(map[string]any)["BadRequest"])["headers"])
		if _, ok := headers["Idempotent-Replayed"]; ok {
			t.Fatal("BadRequest lists Idempotent-Replayed, but a 400 is never kept")
		}
		body := `{"to":"12","from":"Test"}`
		first, again := send("bad-body", body), send("bad-body", body)
		if first.StatusCode != 400 || again.StatusCode != 400 {
			t.Fatalf("%d then %d, want 400 twice", first.StatusCode, again.StatusCode)
		}
		if first.Header.Get("Idempotent-Replayed") != "" || again.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("Idempotent-Replayed %q then %q, want none twice",
				first.Header.Get("Idempotent-Replayed"), again.Header.Get("Idempotent-Replayed"))
		}
	})
}
