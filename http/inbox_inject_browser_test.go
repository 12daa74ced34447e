package http

import (
	"strings"
	"testing"
	"time"
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
	id := b.sendBody("447979080215", body)
	code := func() string {
		// The body as the store has it, the code taken from where the
		// template put it.
		text := b.sentCode("447979080215", id)
		_, after, _ := strings.Cut(text, "<b>bold</b> ")
		code, _, _ := strings.Cut(after, " ")
		return code
	}

	for _, m := range pageModes {
		t.Run(m.name, func(t *testing.T) {
			tab := openInbox(t, browser, b.url+"/inbox", m)
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
