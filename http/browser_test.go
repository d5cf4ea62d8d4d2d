package http_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
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
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		tb.Fatalf("%s (at %s): %v", what, loc, err)
	}
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

// office is alice (admin) and bob sharing a project, in a server.
type browserOffice struct {
	s          *TestServer
	b          *browser
	alice, bob string // tokens
	project    int64
}

func newBrowserOffice(tb testing.TB) *browserOffice {
	tb.Helper()
	chromiumPath(tb)
	s := MustOpenServer(tb)
	_, alice := s.MustCreateUser(tb, "alice", true)
	_, bob := s.MustCreateUser(tb, "bob", false)
	pid := s.MustCreateProject(tb, alice, "Office move", "bob")
	return &browserOffice{s: s, b: mustBrowser(tb, s), alice: alice, bob: bob, project: pid}
}

func (o *browserOffice) projectPath() string { return fmt.Sprintf("/projects/%d", o.project) }

func TestBrowserUrgentTodoReachesBobAtOnce(t *testing.T) {
	o := newBrowserOffice(t)
	alice := o.b.newPerson(t, "alice")
	bob := o.b.newPerson(t, "bob")
	bob.open(t, o.projectPath())
	evalIn[int](t, bob.ctx, `window.__marker = 42`)
	alice.open(t, o.projectPath())

	alice.run(t, "create an urgent todo",
		chromedp.Click(css(`details.create-box summary`)),
		chromedp.SendKeys(css(`form[data-create="todos"] input[name="title"]`), "Fix the printer"),
		chromedp.SetValue(css(`form[data-create="todos"] select[name="priority"]`), "urgent"),
		chromedp.Click(css(`form[data-create="todos"] button[type="submit"]`)),
	)
	bob.run(t, "see the red info box",
		chromedp.WaitVisible(css(`#infobox .tiding.urgent`)),
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
