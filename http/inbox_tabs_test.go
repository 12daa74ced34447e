package http

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// setHidden makes a tab's page believe it was hidden or shown, as a browser
// tells a page when its tab goes to the background or comes back: headless
// tabs are all visible.
const setHidden = `(hidden) => {
	Object.defineProperty(document, "hidden", {value: hidden, configurable: true});
	Object.defineProperty(document, "visibilityState", {value: hidden ? "hidden" : "visible", configurable: true});
	document.dispatchEvent(new Event("visibilitychange"));
	return true;
}`

// Over HTTP/1.1 a browser keeps at most six connections to one server, and
// each live inbox page holds one: tabs in the background give theirs up, so
// that any number of inbox tabs can be open, and catch up when shown.
func TestInboxPageInManyTabs(t *testing.T) {
	t.Parallel()
	b := newBrowserEnv(t)
	browser := startBrowser(t)
	var tabs []context.Context
	open := func(i int) context.Context {
		tab, cancel := chromedp.NewContext(browser)
		t.Cleanup(cancel)
		tab, cancelTimeout := context.WithTimeout(tab, 60*time.Second)
		t.Cleanup(cancelTimeout)
		if err := chromedp.Do(tab, chromedp.Navigate(b.url+"/inbox")); err != nil {
			t.Fatalf("tab %d did not load: %v", i, err)
		}
		poll[bool](t, tab, "tab "+strconv.Itoa(i)+" live", `document.getElementById("status").className === "live"`)
		return tab
	}
	hide := func(tab context.Context, hidden bool) {
		if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`(`+setHidden+`)(`+strconv.FormatBool(hidden)+`)`)); err != nil {
			t.Fatal(err)
		}
	}
	// Six tabs, each sent to the background once opened, as a developer
	// opens the inbox again and again.
	for i := range 6 {
		tab := open(i)
		hide(tab, true)
		tabs = append(tabs, tab)
	}
	last := open(6)
	id := b.send("447979080215")
	poll[bool](t, last, "the message in the newest tab", `document.getElementById("list").textContent.includes("`+id+`")`)

	poll[bool](t, tabs[1], "tab 1 paused", `document.getElementById("status").textContent === "Paused while hidden"`)

	// A tab shown again catches up on what came while it was hidden.
	hide(tabs[0], false)
	poll[bool](t, tabs[0], "tab 0 live again", `document.getElementById("status").className === "live"`)
	poll[bool](t, tabs[0], "the message sent while tab 0 was hidden", `document.getElementById("list").textContent.includes("`+id+`")`)
}
