package http

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// A custom body with a year before its code ("Acme 2026: your code is
// 123456") showed 2026 as the code on the inbox page, and its copy button
// copied 2026: the page took the first run of digits. In Chromium, streamed
// and polled, the page now shows the code the server found, and no code
// at all for a message whose code the server cannot know (its verification
// purged), rather than a guess.
func TestInboxPageShowsTheCodeNotAYear(t *testing.T) {
	t.Parallel()
	b := newBrowserEnv(t)
	browser := startBrowser(t)
	for i, m := range pageModes {
		to := "44797908023" + strconv.Itoa(i+1)
		t.Run(m.name, func(t *testing.T) {
			tab := openInbox(t, browser, b.url+"/inbox?to="+to, m)

			// A message with no verification behind it: no code to show.
			b.addInbox(to, "Acme 2026: your code is 314159", time.Duration(len(m.name)))
			poll[bool](t, tab, "the message without a verification", `document.getElementById("list").textContent.includes("314159")`)

			id := b.sendBody(to, "Acme 2026: your code is {{code}}")
			item := `[...document.querySelectorAll("#list li")].find(li => li.textContent.includes("` + id + `"))`
			got := poll[string](t, tab, "the code of request "+id, item+`?.querySelector(".code")?.textContent`)
			text := b.sentCode(to, id) // no default prefix to cut: the whole text
			want := strings.TrimPrefix(text, "Acme 2026: your code is ")
			if got != want {
				t.Fatalf("the page shows code %q for text %q, want %q", got, text, want)
			}
			if n := poll[string](t, tab, "the codes shown", `String(document.querySelectorAll("#list li .code").length)`); n != "1" {
				t.Fatalf("%s codes shown, want only the verification's: the message without one shows none", n)
			}
			// The copy button copies what is shown; the clipboard itself is
			// the browser's, so the page's copy is caught on its way there.
			copied := `navigator.clipboard.writeText = t => { window.copied = t; return Promise.resolve(); }; true`
			if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](copied)); err != nil {
				t.Fatal(err)
			}
			if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](item+`.querySelector("button").click() || true`)); err != nil {
				t.Fatal(err)
			}
			if got := poll[string](t, tab, "the copied code", `window.copied`); got != want {
				t.Fatalf("copied %q, want %q", got, want)
			}
		})
	}
}
