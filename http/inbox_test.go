package http

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"verifyd"
)

func TestInbox(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(cfg *Config) { cfg.Dev = true }))
	ctx := context.Background()
	var ids []string
	// What the dev sender does with each claimed message.
	for i, to := range []string{"447979080215", "33612345678", "447979080215"} {
		vc := e.create(`{"to":"` + to + `","from":"Test"}`)
		ids = append(ids, vc.RequestID)
		text := e.text(vc.RequestID)
		err := e.store.AddInboxMessages(ctx, []*verifyd.InboxMessage{{
			RequestID: vc.RequestID, To: to, From: "Test",
			Sealed: e.keyring.Seal(vc.RequestID, []byte(text)), Created: t0.Add(time.Duration(i) * time.Second),
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Run("NewestFirstOpened", func(t *testing.T) {
		w := e.doWith("GET", "/inbox/messages", "", nil)
		var got []map[string]string
		decodeInto(t, w, &got)
		if w.Code != 200 || len(got) != 3 || w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
		}
		if got[0]["requestId"] != ids[2] || got[2]["requestId"] != ids[0] {
			t.Fatalf("order = %v", got)
		}
		m := got[0]
		if m["id"] == "" || m["to"] != "447979080215" || m["from"] != "Test" || m["created"] != "2025-03-04T10:20:32.419Z" ||
			m["body"] != "Your verification code is "+e.code(ids[2]) {
			t.Fatalf("message = %v", m)
		}
	})
	t.Run("FilteredByNormalisedNumber", func(t *testing.T) {
		for _, q := range []string{"447979080215", "%2B44%207979%20080215", "0044-7979-080215"} {
			w := e.doWith("GET", "/inbox/messages?to="+q, "", nil)
			var got []map[string]string
			decodeInto(t, w, &got)
			if len(got) != 2 || got[0]["requestId"] != ids[2] || got[1]["requestId"] != ids[0] {
				t.Fatalf("?to=%s: %s", q, w.Body)
			}
		}
		w := e.doWith("GET", "/inbox/messages?to=nonsense", "", nil)
		if strings.TrimSpace(w.Body.String()) != "[]" || w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("?to=nonsense: %s %v", w.Body, w.Header())
		}
	})
	t.Run("Page", func(t *testing.T) {
		w := e.doWith("GET", "/Inbox/", "", nil)
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") ||
			!strings.Contains(w.Body.String(), "/inbox/messages") || w.Header().Get("Content-Security-Policy") == "" {
			t.Fatalf("%d %v", w.Code, w.Header())
		}
		if strings.Contains(w.Body.String(), "http://") || strings.Contains(w.Body.String(), "https://") {
			t.Fatal("the page loads something from elsewhere")
		}
	})
	t.Run("NoCredentialsNeeded", func(t *testing.T) {
		if w := e.doWith("GET", "/inbox/messages", "", func(r *http.Request) {}); w.Code != 200 {
			t.Fatalf("%d", w.Code)
		}
	})
}
