package http

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"verifyd"
)

// The inbox page showed the first run of 4 to 10 digits of a text as its
// code, large, with a copy button: "Acme 2026: your code is 123456" showed
// and copied 2026. The server now says which digits are the code, by
// checking the text's digit runs against the verification's code MAC, in
// /inbox/messages and in each event; and says nothing when it cannot know
// (the verification purged), rather than guess.
func TestInboxMessagesCarryTheCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t,
		withConfig(func(cfg *Config) { cfg.Dev = true }),
		withSettings(func(s *verifyd.Settings) { s.RetentionDays = 1 }))
	ctx := context.Background()
	// deliver creates a verification with body (the default when empty),
	// puts its text in the inbox as the dev sender does, and returns its
	// request id and code, read from the text by where the template put it.
	deliver := func(to, body, before string) (id, code string) {
		t.Helper()
		req := map[string]string{"to": to, "from": "Test"}
		if body != "" {
			req["body"] = body
		}
		b, _ := json.Marshal(req)
		id = e.create(string(b)).RequestID
		text := e.text(id)
		rest, ok := strings.CutPrefix(text, before)
		if !ok || len(rest) < 6 {
			t.Fatalf("text %q does not start with %q", text, before)
		}
		code = rest[:6]
		err := e.store.AddInboxMessages(ctx, []*verifyd.InboxMessage{{
			RequestID: id, To: to, From: "Test", Sealed: e.keyring.Seal(id, []byte(text)), Created: e.clock(),
		}})
		if err != nil {
			t.Fatal(err)
		}
		return id, code
	}
	// listed is the inbox's item for request id, as /inbox/messages has it.
	listed := func(to, id string) map[string]any {
		t.Helper()
		w := e.doWith("GET", "/inbox/messages?to="+to, "", nil)
		var got []map[string]any
		decodeInto(t, w, &got)
		for _, m := range got {
			if m["requestId"] == id {
				return m
			}
		}
		t.Fatalf("request %s is not listed: %s", id, w.Body)
		return nil
	}

	for _, c := range []struct{ name, to, body, before string }{
		{"YearBeforeTheCode", "447979080201", "Acme 2026: your code is {{code}}", "Acme 2026: your code is "},
		{"DefaultBody", "447979080202", "", "Your verification code is "},
		{"CodeTwice", "447979080203", "{{code}} is your code. Again: {{code}}", ""},
		{"DigitsAllAround", "447979080204", "Order 12345678 of 2026-11-27 - {{code}} - call 0800123456 or 99999", "Order 12345678 of 2026-11-27 - "},
	} {
		t.Run(c.name, func(t *testing.T) {
			id, code := deliver(c.to, c.body, c.before)
			if got := listed(c.to, id); got["code"] != code {
				t.Fatalf("code %v, want %s, of body %q", got["code"], code, got["body"])
			}
		})
	}

	t.Run("InEachEvent", func(t *testing.T) {
		ts := httptest.NewServer(e.srv)
		t.Cleanup(ts.Close) // after the stream's own cleanup closes it
		id, code := deliver("447979080205", "Acme 2026: your code is {{code}}", "Acme 2026: your code is ")
		s := openStream(t, ts.URL+"/inbox/events?to=447979080205", "")
		if ev := s.next(t); ev.msg.RequestID != id || ev.msg.Code != code {
			t.Fatalf("event %+v, want request %s with code %s", ev.msg, id, code)
		}
	})

	t.Run("NoneOncePurged", func(t *testing.T) {
		id, _ := deliver("447979080206", "Acme 2026: your code is {{code}}", "Acme 2026: your code is ")
		// The verification goes after its account's day; its message stays
		// the inbox's 7 days.
		if _, err := e.store.PurgeVerifications(ctx, e.clock().Add(24*time.Hour+time.Second)); err != nil {
			t.Fatal(err)
		}
		got := listed("447979080206", id)
		if c, ok := got["code"]; ok {
			t.Fatalf("code %v for a purged verification, want none", c)
		}
	})
}
