package http

import (
	"strconv"
	"testing"
	"time"
)

// animated is, on the inbox page, the data-id of each list item whose
// arrival flash is running, as JSON (never empty, so that poll takes it).
const animated = `JSON.stringify(document.getAnimations().map(a => a.effect.target.dataset.id))`

// A message that arrives while the page is open flashes once, to draw the
// eye to it. Each later arrival must flash only itself, and a page that
// polls must let a flash end: the page re-laid its whole list at each
// render, so that every earlier arrival, put back with its flash class
// still on, flashed again with each new message, and on a polling page
// (a render every 1.5 s) never stopped flashing.
func TestInboxPageFlashesOnlyTheNewMessage(t *testing.T) {
	t.Parallel()
	b := newBrowserEnv(t)
	browser := startBrowser(t)
	for i, m := range pageModes {
		to := "447979080" + strconv.Itoa(i+2)
		t.Run(m.name, func(t *testing.T) {
			tab := openInbox(t, browser, b.url+"/inbox", m)
			// What comes in the stream's first second is its backlog,
			// which does not flash.
			time.Sleep(1500 * time.Millisecond)

			idOf := func(requestID string) string {
				return poll[string](t, tab, "the message of request "+requestID, `[...document.querySelectorAll("#list li")].find(li =>
					li.querySelector(".meta").textContent.includes("`+requestID+`"))?.dataset.id`)
			}
			a := idOf(b.send(to + "15"))
			if got := poll[string](t, tab, "the first message's flash", animated); got != `["`+a+`"]` {
				t.Fatalf("flashing: %s, want the new message %s alone", got, a)
			}
			poll[bool](t, tab, "the flash to end", `document.getAnimations().length === 0`)

			id := idOf(b.send(to + "16"))
			if got := poll[string](t, tab, "the flashes", animated); got != `["`+id+`"]` {
				t.Fatalf("flashing after the second message: %s, want the new message %s alone", got, id)
			}
		})
	}
}
