package http

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// A create's custom body is text an API client chose, and the inbox page
// shows it to a developer with no password asked: in a real browser, a body
// full of markup must show as the text it is, and no part of it may become
// an element or run, whether it comes over the event stream or from the
// JSON the page polls.
func TestInboxPageShowsMarkupAsText(t *testing.T) {
	t.Parallel()
	b := newBrowserEnv(t)
	browser := startBrowser(t)
	const body = `<img src=x onerror="document.title='pwned'"><b>bold</b> {{code}} ` +
		`</div><script>document.title='pwned'</script><a href="javascript:void(document.title='pwned')">x</a>`
	payload, _ := json.Marshal(map[string]string{"to": "447979080215", "from": "Test", "body": body})
	req, err := http.NewRequest("POST", b.url+"/webapi/verify", strings.NewReader(string(payload)))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(b.user, b.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var vc verifyCode
	if err := json.NewDecoder(resp.Body).Decode(&vc); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("create: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	code := func() string {
		// The body as the store has it, the code taken from where the
		// template put it.
		text := b.sentCode("447979080215", vc.RequestID)
		_, after, _ := strings.Cut(text, "<b>bold</b> ")
		code, _, _ := strings.Cut(after, " ")
		return code
	}

	for _, c := range []struct{ name, setup, status string }{
		{"Stream", "", "live"},
		{"Polling", `delete window.EventSource;`, "polling"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tab, cancel := chromedp.NewContext(browser)
			defer cancel()
			tab, cancelTimeout := context.WithTimeout(tab, 60*time.Second)
			defer cancelTimeout()
			setup := chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
				_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument,
					page.AddScriptToEvaluateOnNewDocumentParams{Source: c.setup})
				return err
			})
			if err := chromedp.Do(tab, setup, chromedp.Navigate(b.url+"/inbox")); err != nil {
				t.Fatal(err)
			}
			poll[bool](t, tab, "the page's way of reading", `document.getElementById("status").className === "`+c.status+`"`)
			shown := poll[string](t, tab, "the message", `document.querySelector("#list li .body")?.textContent`)
			code := code()
			want := strings.ReplaceAll(body, "{{code}}", code)
			if !strings.Contains(shown, want) {
				t.Fatalf("the page shows the body as %q, want the text %q", shown, want)
			}
			if got := poll[string](t, tab, "the code", `document.querySelector("#list li .code")?.textContent`); got != code {
				t.Fatalf("the page picked %q as the code, want %q", got, code)
			}
			// Give anything that was to run its moment.
			time.Sleep(200 * time.Millisecond)
			found := poll[string](t, tab, "the page's state", `JSON.stringify({title: document.title,
				markup: [...document.querySelectorAll("#list img, #list script, #list a, #list li .body *")].map(e => e.tagName)})`)
			if found != `{"title":"verifyd inbox","markup":[]}` {
				t.Fatalf("the body became markup: %s", found)
			}
		})
	}
}
