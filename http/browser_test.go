package http_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

// css is a CSS selector.
type css = chromedp.CSS

// step is a browser action without a result.
type step = chromedp.Action[chromedp.Void]

// The browser tests drive Debian's chromium through the DevTools protocol
// against a real server. Without chromium they skip, saying why, unless
// TIDINGS_REQUIRE_BROWSER=1 (as in CI), where they fail.

// chromiumPath finds the browser.
func chromiumPath(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("TIDINGS_REQUIRE_BROWSER") == "1" {
		tb.Fatal("TIDINGS_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install chromium)")
	}
	tb.Skip("no chromium on PATH: install Debian's chromium to run the browser tests")
	return ""
}

// browser is one headless chromium for a test.
type browser struct {
	root context.Context
	s    *TestServer
}

// mustBrowser starts chromium, closed when the test ends.
func mustBrowser(tb testing.TB, s *TestServer) *browser {
	tb.Helper()
	path := chromiumPath(tb)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Hidden and background tabs must keep their timers: tests run many
		// tabs at once.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.WindowSize(1280, 900),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	root, cancelRoot := chromedp.NewContext(alloc)
	if err := chromedp.Do(root); err != nil {
		cancelRoot()
		cancelAlloc()
		tb.Fatalf("start chromium: %v", err)
	}
	tb.Cleanup(func() {
		cancelRoot()
		cancelAlloc()
	})
	return &browser{root: root, s: s}
}

// person is a browser context (its own cookies and storage) and its first
// tab.
type person struct {
	b     *browser
	login string
	ctx   context.Context // the first tab
}

// newPerson opens a fresh browser context and logs login in through the
// login form.
func (b *browser) newPerson(tb testing.TB, login string) *person {
	tb.Helper()
	ctx, cancel := chromedp.NewContext(b.root, chromedp.WithNewBrowserContext())
	tb.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatal(err)
	}
	p := &person{b: b, login: login, ctx: ctx}
	p.run(tb, "log in",
		chromedp.Navigate(b.s.URL()+"/login"),
		chromedp.WaitVisible(css(`input[name="login"]`)),
		chromedp.SendKeys(css(`input[name="login"]`), login),
		chromedp.SendKeys(css(`input[name="password"]`), "password1"),
		chromedp.Submit(css(`input[name="password"]`)),
		chromedp.WaitVisible(css(`header.top`)),
	)
	return p
}

// newTab opens another tab in the person's browser context.
func (p *person) newTab(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := chromedp.NewContext(p.b.root, chromedp.WithExistingBrowserContext(chromedp.FromContext(p.ctx).BrowserContextID))
	tb.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatal(err)
	}
	return ctx
}

// newTabWithCancel is newTab with a way to close the tab.
func (p *person) newTabWithCancel(tb testing.TB) (context.Context, func()) {
	tb.Helper()
	ctx, cancel := chromedp.NewContext(p.b.root, chromedp.WithExistingBrowserContext(chromedp.FromContext(p.ctx).BrowserContextID))
	tb.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatal(err)
	}
	return ctx, cancel
}

// run runs browser actions in the first tab, bounded in time.
func (p *person) run(tb testing.TB, what string, steps ...step) {
	tb.Helper()
	runIn(tb, p.ctx, what, steps...)
}

// browserBound bounds every browser step of the tests.
const browserBound = 20 * time.Second

func runIn(tb testing.TB, ctx context.Context, what string, steps ...step) {
	tb.Helper()
	bounded, cancel := context.WithTimeout(ctx, browserBound)
	defer cancel()
	if err := chromedp.Do(bounded, steps...); err != nil {
		tb.Fatalf("%s (at %s): %v\npage: %s", what, location(ctx), err, pageText(ctx))
	}
}

// location is the tab's address, or why it is not known. It asks the
// browser, not the page, so it works with JavaScript off too.
func location(ctx context.Context) string {
	bounded, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c := chromedp.FromContext(ctx)
	if c == nil || c.Target == nil {
		return "no tab"
	}
	infos, err := chromedp.Targets(bounded)
	if err != nil {
		return err.Error()
	}
	for _, info := range infos {
		if info.TargetID == c.Target.TargetID {
			return info.URL
		}
	}
	return "a closed tab"
}

// pageText is the text of the tab's page, to say what went wrong.
func pageText(ctx context.Context) string {
	bounded, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	text, err := chromedp.Run(bounded, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return err.Error()
	}
	return strings.Join(strings.Fields(text), " ")
}

// evalIn evaluates a JavaScript expression in a tab.
func evalIn[T any](tb testing.TB, ctx context.Context, expr string) T {
	tb.Helper()
	bounded, cancel := context.WithTimeout(ctx, browserBound)
	defer cancel()
	v, err := chromedp.Run(bounded, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// open navigates to a page and waits until its client has had an answer.
func (p *person) open(tb testing.TB, path string) {
	tb.Helper()
	openIn(tb, p.ctx, p.b.s.URL()+path)
}

func openIn(tb testing.TB, ctx context.Context, url string) {
	tb.Helper()
	runIn(tb, ctx, "open "+url,
		chromedp.Navigate(url),
		chromedp.WaitVisible(css(`body[data-connection="online"]`)),
	)
}

// screenshotDir is where the tests leave screenshots to look at; the
// folder is ignored by git.
func screenshotDir(tb testing.TB) string {
	dir := os.Getenv("TIDINGS_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// screenshot saves the tab's page as name.png.
func screenshot(tb testing.TB, ctx context.Context, name string) {
	tb.Helper()
	bounded, cancel := context.WithTimeout(ctx, browserBound)
	defer cancel()
	// Boxes slide in: wait until they are still, so the picture shows them
	// as a person sees them.
	if _, err := chromedp.Run(bounded, chromedp.Poll[chromedp.Void](`document.getAnimations().every(a => a.playState !== "running") || undefined`, chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		tb.Logf("screenshot %s: animations still running: %v", name, err)
	}
	buf, err := chromedp.Run(bounded, chromedp.FullScreenshot(100))
	if err != nil {
		tb.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir(tb), name+".png"), buf, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// narrow makes the tab width pixels wide, like a phone.
func narrow(width int64) step {
	return chromedp.EmulateViewport(width, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)
}

// dark makes the tab prefer a dark colour scheme.
func dark() step {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		})
		return err
	})
}

// browserOffice is alice (admin) and bob sharing a project, in a server.
type browserOffice struct {
	s          *TestServer
	b          *browser
	alice, bob string // tokens
	bobID      int64
	project    int64
}

func newBrowserOffice(tb testing.TB, opts ...Option) *browserOffice {
	tb.Helper()
	chromiumPath(tb)
	s := MustOpenServer(tb, opts...)
	_, alice := s.MustCreateUser(tb, "alice", true)
	bobUser, bob := s.MustCreateUser(tb, "bob", false)
	pid := s.MustCreateProject(tb, alice, "Office move", "bob")
	return &browserOffice{s: s, b: mustBrowser(tb, s), alice: alice, bob: bob, bobID: bobUser.ID, project: pid}
}

// createTodo creates a todo as alice through the API.
func (o *browserOffice) createTodo(tb testing.TB, fields map[string]any) int64 {
	tb.Helper()
	var todo struct{ ID int64 }
	o.s.MustDo(tb, "POST", fmt.Sprintf("/api/v1/projects/%d/todos", o.project), o.alice, fields, 201, &todo)
	return todo.ID
}

func (o *browserOffice) projectPath() string { return fmt.Sprintf("/projects/%d", o.project) }

func TestBrowserUrgentTodoReachesBobAtOnce(t *testing.T) {
	o := newBrowserOffice(t)
	alice := o.b.newPerson(t, "alice")
	bob := o.b.newPerson(t, "bob")
	bob.open(t, o.projectPath())
	evalIn[int](t, bob.ctx, `window.__marker = 42`)
	alice.open(t, o.projectPath())

	alice.run(t, "fill in an urgent todo",
		chromedp.Click(css(`details.create-box summary`)),
		chromedp.SendKeys(css(`form[data-create="todos"] input[name="title"]`), "Fix the printer"),
		chromedp.SetValue(css(`form[data-create="todos"] select[name="priority"]`), "urgent"),
	)
	clicked := time.Now()
	alice.run(t, "create it", chromedp.Click(css(`form[data-create="todos"] button[type="submit"]`)))
	bob.run(t, "see the red info box",
		chromedp.WaitVisible(css(`#infobox .tiding.urgent`)),
	)
	t.Logf("bob saw the info box %s after alice clicked", time.Since(clicked).Round(time.Millisecond))
	// The list reads the new todo from the API once the message is in, so
	// it follows the info box by a request: wait for it, within the bound.
	bob.run(t, "see the todo listed",
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll('[data-live-list="todos"] li a.title')].some(a => a.textContent === "Fix the printer") || undefined`, chromedp.WithPollingTimeout(browserBound)),
	)
	type seen struct {
		Text, Href, Role string
		Listed, Marker   bool
	}
	got := evalIn[seen](t, bob.ctx, `(() => {
		const box = document.querySelector("#infobox .tiding.urgent");
		const link = box.querySelector(".where a");
		return {
			Text: box.querySelector(".what").textContent,
			Href: link ? link.getAttribute("href") : "",
			Role: box.getAttribute("role"),
			Listed: [...document.querySelectorAll('[data-live-list="todos"] li a.title')].some(a => a.textContent === "Fix the printer"),
			Marker: window.__marker === 42,
		};
	})()`)
	if !strings.Contains(got.Text, "Fix the printer") || got.Role != "alert" || !strings.HasPrefix(got.Href, "/todos/") {
		t.Fatalf("info box %+v", got)
	}
	if !got.Listed || !got.Marker {
		t.Fatalf("bob's project page: listed %v, not reloaded %v", got.Listed, got.Marker)
	}
	screenshot(t, bob.ctx, "project-with-info-box")

	bob.run(t, "follow the link", chromedp.Click(css(`#infobox .tiding.urgent .where a`)), chromedp.WaitVisible(css(`form.item-form`)))
	title := evalIn[string](t, bob.ctx, `document.querySelector('form.item-form input[name="title"]').value`)
	if title != "Fix the printer" {
		t.Fatalf("the link opened a todo titled %q", title)
	}
}

func TestBrowserOpenFormMarksWhatSomeoneElseChanged(t *testing.T) {
	o := newBrowserOffice(t)
	id := o.createTodo(t, map[string]any{"title": "Order boxes", "description": "Forty of them"})
	bob := o.b.newPerson(t, "bob")
	bob.open(t, fmt.Sprintf("/todos/%d", id))
	bob.run(t, "type into the description",
		chromedp.Click(css(`textarea[name="description"]`)),
		chromedp.SendKeys(css(`textarea[name="description"]`), " — and tape"),
	)
	o.s.MustDo(t, "PATCH", fmt.Sprintf("/api/v1/todos/%d", id), o.alice, map[string]any{"title": "Order moving boxes"}, 200, nil)

	bob.run(t, "see the title marked", chromedp.WaitVisible(css(`input[name="title"][data-changed="true"]`)))
	type form struct{ Title, Description, Offer string }
	got := evalIn[form](t, bob.ctx, `({
		Title: document.querySelector('input[name="title"]').value,
		Description: document.querySelector('textarea[name="description"]').value,
		Offer: document.querySelector('input[name="title"]').closest(".field").querySelector(".offer .offer-value")?.textContent ?? "",
	})`)
	if got.Title != "Order boxes" || got.Description != "Forty of them — and tape" || got.Offer != "Order moving boxes" {
		t.Fatalf("bob's form: %+v", got)
	}
	if evalIn[bool](t, bob.ctx, `document.querySelector('textarea[name="description"]').hasAttribute("data-changed")`) {
		t.Fatal("the field bob typed into, which nobody else changed, is marked")
	}
	screenshot(t, bob.ctx, "item-form-with-marked-field")

	// Saving sends what bob changed, and leaves alice's title alone.
	bob.run(t, "save", chromedp.Click(css(`form.item-form button[type="submit"]`)), chromedp.WaitVisible(css(`.saved:not(:empty)`)))
	var todo struct{ Title, Description string }
	o.s.MustDo(t, "GET", fmt.Sprintf("/api/v1/todos/%d", id), o.bob, nil, 200, &todo)
	if todo.Title != "Order moving boxes" || todo.Description != "Forty of them — and tape" {
		t.Fatalf("after bob's save: %+v", todo)
	}
}

func TestBrowserNothingATypedNameRuns(t *testing.T) {
	o := newBrowserOffice(t)
	const evil = `<img src=x onerror=alert(1)>`
	bob := o.b.newPerson(t, "bob")
	bob.open(t, o.projectPath())
	evalIn[bool](t, bob.ctx, `(window.__ran = false, window.alert = () => { window.__ran = true }, true)`)
	id := o.createTodo(t, map[string]any{"title": evil, "priority": "urgent"})
	bob.run(t, "see the box", chromedp.WaitVisible(css(`#infobox .tiding`)))
	bob.run(t, "see the entry", chromedp.WaitVisible(css(fmt.Sprintf(`[data-live-list="todos"] li[data-id="%d"]`, id))))
	type page struct {
		Box, Entry string
		Images     int
		Ran        bool
	}
	got := evalIn[page](t, bob.ctx, fmt.Sprintf(`({
		Box: document.querySelector("#infobox .tiding .where a").textContent,
		Entry: document.querySelector('[data-live-list="todos"] li[data-id="%d"] .title').textContent,
		Images: document.querySelectorAll("main img, #infobox img").length,
		Ran: window.__ran,
	})`, id))
	if got.Box != evil || got.Entry != evil || got.Images != 0 || got.Ran {
		t.Fatalf("bob's project page: %+v", got)
	}
	// The item page and a fresh render of the list show it as text too.
	for path, expr := range map[string]string{
		fmt.Sprintf("/todos/%d", id): `document.querySelector('form.item-form input[name="title"]').value === document.querySelector("h1.page-title").textContent && document.querySelector("h1.page-title").textContent`,
		o.projectPath():              fmt.Sprintf(`document.querySelector('[data-live-list="todos"] li[data-id="%d"] .title').textContent`, id),
	} {
		bob.open(t, path)
		if got := evalIn[string](t, bob.ctx, expr); got != evil {
			t.Fatalf("%s shows %q, want the name as text", path, got)
		}
		if n := evalIn[int](t, bob.ctx, `document.querySelectorAll("main img, #infobox img").length`); n != 0 {
			t.Fatalf("%s has %d images", path, n)
		}
	}
	screenshot(t, bob.ctx, "project-with-a-name-that-looks-like-html")
}

func TestBrowserTabsShareOneConnection(t *testing.T) {
	o := newBrowserOffice(t)
	bob := o.b.newPerson(t, "bob")
	// The first tab owns the browser context: it leaves Tidings, and two
	// other tabs of the same browser open it.
	bob.run(t, "leave", chromedp.Navigate("about:blank"))
	waitFor(t, "no connection while no tab shows Tidings", func() bool { return o.s.Hub.WaitingFor(o.bobID) == 0 })
	first, closeFirst := bob.newTabWithCancel(t)
	openIn(t, first, o.s.URL()+o.projectPath())
	second := bob.newTab(t)
	openIn(t, second, o.s.URL()+"/")
	waitFor(t, "one held connection for bob's two tabs", func() bool { return o.s.Hub.WaitingFor(o.bobID) == 1 })

	o.s.MustPublish(t, o.alice, map[string]any{"recipients": []string{"bob"}, "text": "to both tabs"})
	for _, ctx := range []context.Context{first, second} {
		runIn(t, ctx, "see the box in each tab", chromedp.WaitVisible(css(`#infobox .tiding`)))
		if text := evalIn[string](t, ctx, `document.querySelector("#infobox .tiding .what").textContent`); text != "to both tabs" {
			t.Fatalf("a tab shows %q", text)
		}
	}
	if n := o.s.Hub.WaitingFor(o.bobID); n != 1 {
		t.Fatalf("bob's browser holds %d connections, want 1", n)
	}

	// The first tab is the leader; when it closes, the other takes over.
	closeFirst()
	closed := time.Now()
	o.s.MustPublish(t, o.alice, map[string]any{"recipients": []string{"bob"}, "text": "after the leader closed"})
	runIn(t, second, "see the message after the handover",
		chromedp.Poll[chromedp.Void](`document.querySelector("#infobox .tiding .what").textContent === "after the leader closed" || undefined`, chromedp.WithPollingTimeout(browserBound)),
	)
	t.Logf("the remaining tab showed the message %s after the leader closed", time.Since(closed))
	waitFor(t, "one held connection again", func() bool { return o.s.Hub.WaitingFor(o.bobID) == 1 })
}

func TestBrowserUrgentBoxStaysAcrossPagesUntilDismissed(t *testing.T) {
	o := newBrowserOffice(t)
	bob := o.b.newPerson(t, "bob")
	bob.open(t, "/")
	o.s.MustPublish(t, o.alice, map[string]any{"recipients": []string{"bob"}, "text": "Fire drill at 3", "urgent": true})
	bob.run(t, "see the urgent box", chromedp.WaitVisible(css(`#infobox .tiding.urgent`)))
	bob.open(t, "/settings")
	bob.run(t, "still see it on another page", chromedp.WaitVisible(css(`#infobox .tiding.urgent`)))
	if text := evalIn[string](t, bob.ctx, `document.querySelector("#infobox .tiding.urgent .what").textContent`); text != "Fire drill at 3" {
		t.Fatalf("the box on the next page says %q", text)
	}
	bob.run(t, "dismiss it", chromedp.Click(css(`#infobox .tiding.urgent button.close`)), chromedp.WaitNotPresent(css(`#infobox .tiding.urgent`)))
	bob.open(t, o.projectPath())
	if n := evalIn[int](t, bob.ctx, `document.querySelectorAll("#infobox .tiding.urgent").length`); n != 0 {
		t.Fatalf("a dismissed urgent box came back (%d)", n)
	}
}

func TestBrowserLoginTakesTheVisitorBack(t *testing.T) {
	o := newBrowserOffice(t)
	path := o.projectPath()
	for _, js := range []bool{true, false} {
		ctx, cancel := chromedp.NewContext(o.b.root, chromedp.WithNewBrowserContext())
		defer cancel()
		if err := chromedp.Do(ctx); err != nil { // the tab lives as long as ctx
			t.Fatal(err)
		}
		mode := map[bool]string{true: "JavaScript on: ", false: "JavaScript off: "}[js]
		if !js {
			runIn(t, ctx, "turn JavaScript off", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
				return err
			}))
		}
		// Only the DOM is asked: with JavaScript off, no script runs, not
		// even the test's.
		runIn(t, ctx, mode+"open the project without a session",
			chromedp.Navigate(o.s.URL()+path),
			chromedp.WaitReady(css(`form[action="/login"] input[name="login"]`)),
		)
		if loc := location(ctx); !strings.Contains(loc, "/login?next=") {
			t.Fatalf("%swithout a session %s led to %s", mode, path, loc)
		}
		runIn(t, ctx, mode+"log in",
			chromedp.SendKeys(css(`input[name="login"]`), "bob"),
			chromedp.SendKeys(css(`input[name="password"]`), "password1\n"),
			chromedp.WaitReady(css(`h1.page-title[data-field="name"]`)),
		)
		if loc := location(ctx); !strings.HasSuffix(loc, path) {
			t.Fatalf("%safter logging in the visitor is at %s, want %s", mode, loc, path)
		}
	}
}

func TestBrowserShowsOfflineAndCatchesUpAfterARestart(t *testing.T) {
	dir := t.TempDir()
	o := newBrowserOffice(t, WithDir(dir))
	bob := o.b.newPerson(t, "bob")
	bob.open(t, o.projectPath())
	addr := o.s.ListenAddr()

	o.s.MustClose(t)
	bob.run(t, "show the offline state", chromedp.WaitVisible(css(`body[data-connection="offline"] .connection`)))
	screenshot(t, bob.ctx, "offline")

	// Published while the server is away, through the database itself as
	// the command line would.
	db := sqlstore.NewDB(filepath.Join(dir, "tidings.db"))
	db.Logger = slog.New(slog.DiscardHandler)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	sys := tidings.NewSystemContext(context.Background())
	alice, err := db.FindUserByLogin(sys, "alice")
	if err != nil {
		t.Fatal(err)
	}
	as := tidings.NewContextWithAuth(context.Background(), &tidings.Auth{User: alice, Session: &tidings.Session{UserID: alice.ID}})
	if _, err := db.PublishMessage(as, &tidings.Publication{Recipients: []string{"bob"}, Text: "while you were away", TTL: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	MustOpenServer(t, WithDir(dir), WithAddr(addr))
	bob.run(t, "come back online with the message",
		chromedp.WaitVisible(css(`body[data-connection="online"]`)),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll("#infobox .tiding .what")].some(e => e.textContent === "while you were away") || undefined`, chromedp.WithPollingTimeout(browserBound)),
	)
	if visible := evalIn[bool](t, bob.ctx, `getComputedStyle(document.querySelector(".connection")).display !== "none"`); visible {
		t.Fatal("the offline notice is still shown")
	}
}

func TestBrowserPagesFitAPhoneAndDarkMode(t *testing.T) {
	o := newBrowserOffice(t)
	id := o.createTodo(t, map[string]any{"title": "Label the boxes for the second floor", "priority": "high", "assignee": "bob", "due": "2026-12-01"})
	o.s.MustDo(t, "POST", fmt.Sprintf("/api/v1/projects/%d/notes", o.project), o.alice, map[string]any{"title": "Floor plan", "body": "Desks by the window."}, 201, nil)
	o.s.MustDo(t, "POST", fmt.Sprintf("/api/v1/projects/%d/appointments", o.project), o.alice, map[string]any{
		"title": "Movers arrive", "start": time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339), "end": time.Now().Add(50 * time.Hour).UTC().Format(time.RFC3339), "participants": []string{"alice", "bob"},
	}, 201, nil)
	bob := o.b.newPerson(t, "bob")
	bob.open(t, "/")
	screenshot(t, bob.ctx, "dashboard")
	bob.open(t, "/settings")
	screenshot(t, bob.ctx, "settings")

	bob.run(t, "be a phone", narrow(390))
	for _, path := range []string{"/", o.projectPath(), fmt.Sprintf("/todos/%d", id), "/settings"} {
		bob.open(t, path)
		if w := evalIn[int](t, bob.ctx, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("%s is %d px wide at 390 px: it scrolls sideways", path, w)
		}
	}
	bob.open(t, "/")
	screenshot(t, bob.ctx, "dashboard-390px")
	bob.run(t, "prefer dark", dark(), chromedp.EmulateViewport(1280, 900))
	bob.open(t, o.projectPath())
	o.s.MustPublish(t, o.alice, map[string]any{"recipients": []string{"bob"}, "text": "The movers come at eight", "urgent": true})
	bob.run(t, "see the box", chromedp.WaitVisible(css(`#infobox .tiding.urgent`)))
	screenshot(t, bob.ctx, "project-dark")
	if bg := evalIn[string](t, bob.ctx, `getComputedStyle(document.body).backgroundColor`); bg == "rgb(245, 246, 248)" {
		t.Fatalf("dark mode kept the light background %s", bg)
	}
}

func TestBrowserMissedUpdatesAreSaidAndTheListsReadAgain(t *testing.T) {
	dir := t.TempDir()
	clock := newTestClock()
	o := newBrowserOffice(t, WithDir(dir), WithClock(clock))
	bob := o.b.newPerson(t, "bob")
	bob.open(t, o.projectPath())
	evalIn[int](t, bob.ctx, `window.__marker = 7`)
	addr := o.s.ListenAddr()
	o.s.MustClose(t)
	bob.run(t, "go offline", chromedp.WaitVisible(css(`body[data-connection="offline"]`)))

	// While bob is away alice adds a todo, and its message expires before
	// he is back.
	db := sqlstore.NewDB(filepath.Join(dir, "tidings.db"))
	db.Logger = slog.New(slog.DiscardHandler)
	db.Now = clock.Now
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	alice, err := db.FindUserByLogin(tidings.NewSystemContext(context.Background()), "alice")
	if err != nil {
		t.Fatal(err)
	}
	as := tidings.NewContextWithAuth(context.Background(), &tidings.Auth{User: alice, Session: &tidings.Session{UserID: alice.ID}})
	todo := &tidings.Todo{Project: tidings.ProjectRef{ID: o.project}, Title: "Added while bob was away"}
	if err := db.CreateTodo(as, todo); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)

	MustOpenServer(t, WithDir(dir), WithAddr(addr), WithClock(clock))
	bob.run(t, "be told what was missed",
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll("#infobox .tiding .what")].some(e => e.textContent.startsWith("You missed 1 update")) || undefined`, chromedp.WithPollingTimeout(browserBound)),
		chromedp.WaitVisible(css(fmt.Sprintf(`[data-live-list="todos"] li[data-id="%d"]`, todo.ID))),
	)
	if evalIn[int](t, bob.ctx, `window.__marker`) != 7 {
		t.Fatal("the page was reloaded instead of updated in place")
	}
}

func TestBrowserADeletedItemSaysSo(t *testing.T) {
	o := newBrowserOffice(t)
	id := o.createTodo(t, map[string]any{"title": "Buy tape"})
	bob := o.b.newPerson(t, "bob")
	bob.open(t, fmt.Sprintf("/todos/%d", id))
	o.s.MustDo(t, "DELETE", fmt.Sprintf("/api/v1/todos/%d", id), o.alice, nil, 204, nil)
	bob.run(t, "see that it is gone", chromedp.WaitVisible(css(`.deleted-note`)))
	if text := evalIn[string](t, bob.ctx, `document.querySelector(".deleted-note").textContent`); !strings.Contains(text, "deleted this todo") {
		t.Fatalf("the page says %q", text)
	}
	if !evalIn[bool](t, bob.ctx, `document.querySelector('form.item-form input[name="title"]').disabled`) {
		t.Fatal("the form of a deleted todo can still be saved")
	}
	// The info box of a deletion has no link to the item.
	if n := evalIn[int](t, bob.ctx, `document.querySelectorAll('#infobox .tiding[data-process="delete"] a[href^="/todos/"]').length`); n != 0 {
		t.Fatalf("the deletion's box links to the deleted todo (%d links)", n)
	}
}

func TestBrowserDontShowThisKindAgain(t *testing.T) {
	o := newBrowserOffice(t)
	bob := o.b.newPerson(t, "bob")
	bob.open(t, o.projectPath())
	o.s.MustPublish(t, o.alice, map[string]any{"recipients": []string{"bob"}, "text": "Cake in the kitchen"})
	bob.run(t, "mute messages from the box",
		chromedp.WaitVisible(css(`#infobox .tiding[data-process="message"] button.mute`)),
		chromedp.Click(css(`#infobox .tiding[data-process="message"] button.mute`)),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll("#infobox .tiding .what")].some(e => e.textContent.startsWith("You will no longer see messages")) || undefined`, chromedp.WithPollingTimeout(browserBound)),
	)
	var settings struct{ Messages, Records bool }
	o.s.MustDo(t, "GET", "/api/v1/me/settings", o.bob, nil, 200, &settings)
	if settings.Messages || !settings.Records {
		t.Fatalf("bob's settings after muting messages: %+v", settings)
	}
}

func TestBrowserEveryControlHasAName(t *testing.T) {
	o := newBrowserOffice(t)
	id := o.createTodo(t, map[string]any{"title": "Buy tape"})
	alice := o.b.newPerson(t, "alice")
	for _, path := range []string{"/", o.projectPath(), fmt.Sprintf("/todos/%d", id), "/settings", "/admin/users"} {
		alice.open(t, path)
		nameless := evalIn[[]string](t, alice.ctx, `[...document.querySelectorAll("a, button, input:not([type=hidden]), select, textarea, summary")].filter(e => {
			const label = (e.labels && [...e.labels].map(l => l.textContent).join("")) || e.getAttribute("aria-label") || e.getAttribute("title") || (e.matches("a, button, summary") ? e.textContent : "");
			return !label || !label.trim();
		}).map(e => e.outerHTML.slice(0, 80))`)
		if len(nameless) > 0 {
			t.Errorf("%s: controls without an accessible name: %q", path, nameless)
		}
		screenshot(t, alice.ctx, "owner"+strings.ReplaceAll(strings.TrimSuffix(path, "/"), "/", "-"))
		// Every control can be reached with the keyboard.
		unreachable := evalIn[[]string](t, alice.ctx, `[...document.querySelectorAll("a, button, input:not([type=hidden]), select, textarea, summary")].filter(e => e.tabIndex < 0 && !e.disabled).map(e => e.outerHTML.slice(0, 80))`)
		if len(unreachable) > 0 {
			t.Errorf("%s: controls out of the tab order: %q", path, unreachable)
		}
	}
}
