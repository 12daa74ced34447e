package http

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	outbox "verifyd/delivery" // the worker; "delivery" is a type here
	"verifyd/inbox"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// startBrowser starts headless Chromium for the test, or fails it: CI must
// run this test, so a missing browser is an error, not a skip.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing: run `make test-deps`, which installs Debian's chromium (%v)", chromiumPath, err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // as root in a container there is no sandbox to have
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(900, 1000),
	)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// The first Do starts the browser, and the browser lives as long as
	// this context: no timeout on it.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return browser
}

// artifactDir is where a test leaves what a person may want to look at:
// $VERIFYD_ARTIFACTS when set (CI keeps it), else the test's temp dir.
func artifactDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("VERIFYD_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// browserEnv is a dev server as serve --dev runs it: the API, the inbox
// routes, and a delivery worker whose sender is the inbox.
type browserEnv struct {
	*testEnv
	url string
}

func newBrowserEnv(t *testing.T) *browserEnv {
	t.Helper()
	var worker *outbox.Worker
	e := newEnv(t, withConfig(func(cfg *Config) {
		cfg.Dev = true
		cfg.Wake = func() { worker.Wake() }
		// The wall clock: the worker bounds each hand-over by the code's
		// validity as a real deadline, and the page shows real times.
		cfg.Now = time.Now
	}))
	worker = outbox.New(outbox.Config{
		Store:  e.store,
		Sender: inbox.New(e.store, e.keyring, time.Now),
		Opener: e.keyring,
		Now:    time.Now,
	})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { worker.Run(ctx); close(done) }()
	ts := httptest.NewServer(e.srv)
	t.Cleanup(func() {
		ts.Close()
		stop()
		<-done
	})
	return &browserEnv{testEnv: e, url: ts.URL}
}

// send creates a verification through the API, over the network like any
// client, and returns its request id.
func (b *browserEnv) send(to string) string {
	b.t.Helper()
	return b.sendBody(to, "")
}

// sendBody is send with a custom body, or the account's when body is "".
func (b *browserEnv) sendBody(to, body string) string {
	b.t.Helper()
	req := map[string]string{"to": to, "from": "Test"}
	if body != "" {
		req["body"] = body
	}
	payload, _ := json.Marshal(req)
	r, err := http.NewRequest("POST", b.url+"/webapi/verify", strings.NewReader(string(payload)))
	if err != nil {
		b.t.Fatal(err)
	}
	r.SetBasicAuth(b.user, b.secret)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var vc verifyCode
	if err := json.NewDecoder(resp.Body).Decode(&vc); err != nil || resp.StatusCode != http.StatusAccepted {
		b.t.Fatalf("create: %d %v", resp.StatusCode, err)
	}
	return vc.RequestID
}

// sentCode is the code the inbox holds for request id, as the store has it.
func (b *browserEnv) sentCode(to, id string) string {
	b.t.Helper()
	ms, err := b.store.ListInboxMessages(context.Background(), to, 100)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, m := range ms {
		if m.RequestID == id {
			text, err := b.keyring.Open(m.RequestID, m.Sealed)
			if err != nil {
				b.t.Fatal(err)
			}
			code, _ := strings.CutPrefix(string(text), "Your verification code is ")
			return code
		}
	}
	b.t.Fatalf("request %s is not in the inbox", id)
	return ""
}

// pageMode is a way the inbox page reads its messages: script runs before
// the page's own (deleting EventSource makes the page poll), and status is
// the class the page's status line then shows.
type pageMode struct{ name, script, status string }

// pageModes are both ways: the event stream, and polling the JSON.
var pageModes = []pageMode{
	{"Stream", "", "live"},
	{"Polling", `delete window.EventSource;`, "polling"},
}

// openInbox opens url in a new tab of browser in mode m, and waits until
// the page reads its messages that way. The tab closes when the test ends.
func openInbox(t *testing.T, browser context.Context, url string, m pageMode) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	tab, cancelTimeout := context.WithTimeout(tab, 60*time.Second)
	t.Cleanup(cancelTimeout)
	setup := chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument,
			page.AddScriptToEvaluateOnNewDocumentParams{Source: m.script})
		return err
	})
	if err := chromedp.Do(tab, setup, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	poll[bool](t, tab, "the page reading", `document.getElementById("status").className === "`+m.status+`"`)
	return tab
}

// poll waits for a JavaScript expression to be truthy on the page and
// returns its value.
func poll[T any](t *testing.T, tab context.Context, what, expr string) T {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(15*time.Second)))
	if err != nil {
		shot(t, tab, "failed.png")
		t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
	return v
}

// shot saves a screenshot of the whole page as an artifact.
func shot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	path := filepath.Join(artifactDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// The inbox page in a real browser: a message sent through the API shows
// up, code first, without a reload; the copy button and the number filter
// work; and without EventSource the page polls instead.
func TestInboxPageInBrowser(t *testing.T) {
	t.Parallel()
	b := newBrowserEnv(t)
	browser := startBrowser(t)
	tab, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()

	if err := chromedp.Do(tab, chromedp.Navigate(b.url+"/inbox")); err != nil {
		t.Fatal(err)
	}
	poll[bool](t, tab, "the live stream", `document.getElementById("status").className === "live"`)
	poll[bool](t, tab, "the empty inbox", `!document.getElementById("empty").hidden`)
	// A reload would lose this.
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`window.sameDocument = true`)); err != nil {
		t.Fatal(err)
	}

	t.Run("NewMessageAppearsLive", func(t *testing.T) {
		id := b.send("447979080215")
		got := poll[string](t, tab, "a code on the page", `document.querySelector("#list li .code")?.textContent`)
		if want := b.sentCode("447979080215", id); got != want {
			t.Fatalf("the page shows code %q, the message holds %q", got, want)
		}
		meta := poll[string](t, tab, "the request id", `document.querySelector("#list li .meta").textContent`)
		if !strings.Contains(meta, id) {
			t.Fatalf("first message's meta %q, want request %s", meta, id)
		}
		if same := poll[bool](t, tab, "the same document", `window.sameDocument === true`); !same {
			t.Fatal("the page reloaded")
		}
	})

	t.Run("NewestFirst", func(t *testing.T) {
		id := b.send("33612345678")
		poll[bool](t, tab, "two messages", `document.querySelectorAll("#list li").length === 2`)
		meta := poll[string](t, tab, "the newest message", `document.querySelector("#list li .meta").textContent`)
		if !strings.Contains(meta, id) {
			t.Fatalf("first message's meta %q, want the newest request %s", meta, id)
		}
		if count := poll[string](t, tab, "the count", `document.getElementById("count").textContent`); count != "2 messages" {
			t.Fatalf("count %q", count)
		}
	})

	t.Run("CopyButton", func(t *testing.T) {
		if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS("#list li button"))); err != nil {
			t.Fatal(err)
		}
		poll[bool](t, tab, "the copied mark", `document.querySelector("#list li button").textContent === "Copied"`)
		shot(t, tab, "inbox.png")
	})

	t.Run("FilterByNumber", func(t *testing.T) {
		if err := chromedp.Do(tab, chromedp.SendKeys(chromedp.CSS("#to"), "+44 7979 080215")); err != nil {
			t.Fatal(err)
		}
		poll[bool](t, tab, "only that number's message", `document.querySelectorAll("#list li").length === 1 &&
			document.querySelector("#list li .who b").textContent === "+447979080215"`)
		poll[bool](t, tab, "the filtered stream", `document.getElementById("status").className === "live"`)
		if q := poll[string](t, tab, "the filter in the address", `location.search`); q != "?to=%2B44%207979%20080215" {
			t.Fatalf("address query %q, want the filter (so the view can be bookmarked)", q)
		}
		b.send("33612345678") // filtered out: must never show
		id := b.send("447979080215")
		poll[bool](t, tab, "the new message of that number", `document.querySelectorAll("#list li").length >= 2`)
		list := poll[string](t, tab, "the list", `document.getElementById("list").textContent`)
		if !strings.Contains(list, id) || strings.Contains(list, "+33612345678") {
			t.Fatalf("filtered list %q: want request %s and no other number", list, id)
		}
	})

	t.Run("PollsWithoutEventSource", func(t *testing.T) {
		tab2 := openInbox(t, browser, b.url+"/inbox", pageModes[1])
		id := b.send("447979080217")
		poll[bool](t, tab2, "the message by polling", `document.getElementById("list").textContent.includes("`+id+`")`)
	})
}
