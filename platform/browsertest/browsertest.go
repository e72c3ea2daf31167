// Package browsertest drives a real headless Chromium (Debian's `chromium`)
// from Go tests through github.com/chromedp/chromedp, for tests that walk
// pages as a reader would and take screenshots of them.
//
// A test starts one browser with one tab:
//
//	b := browsertest.New(t)
//	b.Navigate(srv.URL + "/subscribe")
//	b.Fill(`input[name="email"]`, "ada@example.com")
//	b.Click(`button[type="submit"]`)
//	b.WaitVisible(`#done`)
//	b.Screenshot(browsertest.ScreenshotDir(t, "../../docs/screenshots"), "subscribed")
//
// Every helper waits for its condition under a deadline (WithTimeout) and
// fails the test with what it was doing when it cannot. A page that throws an
// uncaught exception or logs a console error (a Content-Security-Policy
// violation, for one) fails the test at its end, unless the test allowed it
// with AllowConsoleErrors.
//
// When chromium is not installed, New fails the test if the environment
// variable CI is set and skips it otherwise, naming the command that
// installs it.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// The viewports Screenshot captures: a laptop screen and a current phone.
const (
	DesktopWidth  = 1280
	DesktopHeight = 800
	PhoneWidth    = 390
	PhoneHeight   = 844
)

// DefaultTimeout bounds each helper call.
const DefaultTimeout = 20 * time.Second

// startTimeout bounds the browser's start; a cold start on a busy 2-core
// machine takes a few seconds.
const startTimeout = 60 * time.Second

// InstallCommand is what installs the browser on Debian and Ubuntu.
const InstallCommand = "apt-get install -y chromium"

// UpdateScreenshotsEnv names the environment variable that, set to 1, makes
// ScreenshotDir return the committed directory instead of a temporary one.
const UpdateScreenshotsEnv = "UPDATE_SCREENSHOTS"

// Option changes how New starts the browser.
type Option func(*config)

type config struct {
	timeout        time.Duration
	timezone       string
	noJavaScript   bool
	allowConsole   bool
	extraFlagNames []string
	extraFlags     []any
}

// WithTimeout sets how long each helper may take (default DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithTimezone makes the page see the IANA time zone tz (as
// Intl.DateTimeFormat().resolvedOptions().timeZone reports it) instead of
// the machine's.
func WithTimezone(tz string) Option { return func(c *config) { c.timezone = tz } }

// WithoutJavaScript disables scripts in the tab, to prove a page works
// without them.
func WithoutJavaScript() Option { return func(c *config) { c.noJavaScript = true } }

// AllowConsoleErrors stops console errors and exceptions from failing the
// test; ConsoleErrors still reports them.
func AllowConsoleErrors() Option { return func(c *config) { c.allowConsole = true } }

// WithFlag adds a command-line flag (name without the leading dashes; value
// true for a bare flag) to the browser's start.
func WithFlag(name string, value any) Option {
	return func(c *config) {
		c.extraFlagNames = append(c.extraFlagNames, name)
		c.extraFlags = append(c.extraFlags, value)
	}
}

// Browser is one headless Chromium with one tab, owned by one test. Its
// methods must be called from the test's goroutine.
type Browser struct {
	t       testing.TB
	ctx     context.Context // the tab's chromedp context
	timeout time.Duration

	mu      sync.Mutex
	console []string // console errors and exceptions, in order
}

// ExecPath returns the path of the chromium binary, or "" when there is none.
func ExecPath() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Require fails t if chromium is missing and CI is set, and skips t if it is
// missing otherwise. New calls it; call it directly to skip early, before
// costly set-up.
func Require(t testing.TB) {
	t.Helper()
	if ExecPath() != "" {
		return
	}
	msg := "browsertest: chromium is not installed (install it with: " + InstallCommand + ")"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; in CI a missing browser is a failure")
	}
	t.Skip(msg)
}

// New starts a headless Chromium with a fresh profile in t.TempDir() and
// opens one tab. The browser stops when the test ends.
func New(t testing.TB, opts ...Option) *Browser {
	t.Helper()
	Require(t)
	cfg := config{timeout: DefaultTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	profile := t.TempDir() // removed after the browser has stopped (cleanups run last-in first-out)
	allocOpts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ExecPath()),
		chromedp.UserDataDir(profile),
		chromedp.Headless, // also hides scrollbars and mutes audio
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-dev-shm-usage", true), // containers have a tiny /dev/shm
		chromedp.Flag("force-color-profile", "srgb"), // the same colours in every screenshot
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.WindowSize(DesktopWidth, DesktopHeight),
	}
	for i, name := range cfg.extraFlagNames {
		allocOpts = append(allocOpts, chromedp.Flag(name, cfg.extraFlags[i]))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	stop := func() {
		cancelTab()
		cancelAlloc() // waits for the browser process to exit
	}

	// The first Run starts the browser and must not carry a deadline (it
	// would stop the browser when it passes), so the start is bounded from
	// outside.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			stop()
			t.Fatalf("browsertest: start %s: %v", ExecPath(), err)
		}
	case <-time.After(startTimeout):
		stop()
		t.Fatalf("browsertest: %s did not start within %v", ExecPath(), startTimeout)
	}

	b := &Browser{t: t, ctx: ctx, timeout: cfg.timeout}
	messages := chromedp.Console(ctx)
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source != "network") {
				b.mu.Lock()
				b.console = append(b.console, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		stop()
		<-listening
		if cfg.allowConsole {
			return
		}
		for _, m := range b.ConsoleErrors() {
			t.Errorf("browsertest: the page logged %s", m)
		}
	})

	var setup []chromedp.Action[chromedp.Void]
	setup = append(setup, chromedp.EmulateViewport(DesktopWidth, DesktopHeight))
	if cfg.timezone != "" {
		setup = append(setup, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: cfg.timezone})
			return err
		}))
	}
	if cfg.noJavaScript {
		setup = append(setup, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}))
	}
	b.Do("set up the tab", setup...)
	return b
}

// Context returns the tab's chromedp context, for actions the helpers do not
// cover. Derive a context with a timeout from it for each call; never put a
// deadline on it directly.
func (b *Browser) Context() context.Context { return b.ctx }

// Do runs chromedp actions in the tab under the helper timeout and fails the
// test with what (a description of the step) when they fail.
func (b *Browser) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browsertest: %s: %v", what, err)
	}
}

// Navigate loads url and waits for the page's load event.
func (b *Browser) Navigate(url string) {
	b.t.Helper()
	b.Do("navigate to "+url, chromedp.Navigate(url))
}

// Fill types text into the text field or textarea matching the CSS
// selector, after clearing it: it focuses the field and inserts the text as
// an input method would, so the page sees input events (it works the same
// inside a cross-site frame, where synthetic key presses can be lost).
func (b *Browser) Fill(selector, text string) {
	b.t.Helper()
	b.Do(fmt.Sprintf("fill %s", selector),
		chromedp.Clear(chromedp.CSS(selector), chromedp.NodeVisible),
		chromedp.Focus(chromedp.CSS(selector), chromedp.NodeVisible),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, input.InsertText, input.InsertTextParams{Text: text})
			return err
		}),
	)
}

// SetValue sets the value of the form control matching the CSS selector
// directly (no key events): for a <select>, the value of the option to pick.
func (b *Browser) SetValue(selector, value string) {
	b.t.Helper()
	b.Do(fmt.Sprintf("set %s to %q", selector, value), chromedp.SetValue(chromedp.CSS(selector), value, chromedp.NodeVisible))
}

// Click clicks the visible element matching the CSS selector. It does not
// wait for a navigation the click starts: follow it with WaitVisible on
// something only the next page has.
func (b *Browser) Click(selector string) {
	b.t.Helper()
	b.Do("click "+selector, chromedp.Click(chromedp.CSS(selector), chromedp.NodeVisible))
}

// WaitVisible waits until an element matching the CSS selector is visible.
func (b *Browser) WaitVisible(selector string) {
	b.t.Helper()
	b.Do("wait for "+selector+" to be visible", chromedp.WaitVisible(chromedp.CSS(selector)))
}

// Text returns the visible text of the element matching the CSS selector,
// once it is visible.
func (b *Browser) Text(selector string) string {
	b.t.Helper()
	return get(b, "read the text of "+selector, chromedp.Text(chromedp.CSS(selector), chromedp.NodeVisible))
}

// Value returns the value of the form control matching the CSS selector.
func (b *Browser) Value(selector string) string {
	b.t.Helper()
	return get(b, "read the value of "+selector, chromedp.Value(chromedp.CSS(selector), chromedp.NodeReady))
}

// Checked reports whether the checkbox or radio button matching the CSS
// selector is checked.
func (b *Browser) Checked(selector string) bool {
	b.t.Helper()
	return get(b, "read whether "+selector+" is checked", chromedp.JavascriptAttribute[bool](chromedp.CSS(selector), "checked", chromedp.NodeReady))
}

// Frame returns a Browser acting inside the cross-site <iframe> of the page
// whose URL starts with urlPrefix, once it has loaded. Chromium runs such a
// frame in its own process, out of reach of the page's selectors. (A
// same-site frame shares the page's DOM: use the page's helpers.) The
// returned Browser's helpers act in the frame; Screenshot and
// ConsoleErrors belong to the page.
func (b *Browser) Frame(urlPrefix string) *Browser {
	b.t.Helper()
	deadline := time.Now().Add(b.timeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
		infos, err := chromedp.Targets(ctx)
		cancel()
		if err != nil {
			b.t.Fatalf("browsertest: list targets: %v", err)
		}
		for _, info := range infos {
			if info.Type != "iframe" || !strings.HasPrefix(info.URL, urlPrefix) {
				continue
			}
			fctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithTargetID(info.TargetID))
			b.t.Cleanup(cancel)
			// Attach without a deadline (it would detach the frame when it
			// passed), bounded from outside.
			attached := make(chan error, 1)
			go func() { attached <- chromedp.Do(fctx) }()
			select {
			case err := <-attached:
				if err != nil {
					b.t.Fatalf("browsertest: attach to frame %s: %v", info.URL, err)
				}
			case <-time.After(b.timeout):
				b.t.Fatalf("browsertest: attach to frame %s: timed out", info.URL)
			}
			return &Browser{t: b.t, ctx: fctx, timeout: b.timeout}
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("browsertest: no cross-site frame at %s within %v", urlPrefix, b.timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Location returns the URL of the page shown.
func (b *Browser) Location() string {
	b.t.Helper()
	return get(b, "read the location", chromedp.Location())
}

// Screenshot saves full-page PNG screenshots of the current page at desktop
// and phone widths as dir/name-desktop.png and dir/name-phone.png, and
// returns their paths. The tab is back at desktop width afterwards.
func (b *Browser) Screenshot(dir, name string) []string {
	b.t.Helper()
	shots := []struct {
		suffix        string
		width, height int64
		opts          []chromedp.EmulateViewportOption
	}{
		{"desktop", DesktopWidth, DesktopHeight, nil},
		{"phone", PhoneWidth, PhoneHeight, []chromedp.EmulateViewportOption{chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateTouch}},
	}
	var paths []string
	for _, s := range shots {
		b.Do("set the "+s.suffix+" viewport", chromedp.EmulateViewport(s.width, s.height, s.opts...))
		png := get(b, "take the "+s.suffix+" screenshot of "+name, chromedp.FullScreenshot(100))
		p := filepath.Join(dir, name+"-"+s.suffix+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			b.t.Fatalf("browsertest: %v", err)
		}
		paths = append(paths, p)
	}
	b.Do("restore the desktop viewport", chromedp.EmulateViewport(DesktopWidth, DesktopHeight))
	return paths
}

// ConsoleErrors returns the uncaught exceptions and console errors the
// pages produced so far (network errors such as a 404 excluded).
func (b *Browser) ConsoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}

// ScreenshotDir is where a test should save its screenshots: committed, the
// directory dir (relative to the test's package directory, created if
// needed) when the environment variable UPDATE_SCREENSHOTS is 1; otherwise
// a temporary directory, so ordinary runs change no file in the tree.
func ScreenshotDir(t testing.TB, dir string) string {
	t.Helper()
	if strings.TrimSpace(os.Getenv(UpdateScreenshotsEnv)) != "1" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	return dir
}

func get[T any](b *Browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	v, err := run(b, a)
	if err != nil {
		b.t.Fatalf("browsertest: %s: %v", what, err)
	}
	return v
}

func run[T any](b *Browser, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	return chromedp.Run(ctx, a)
}
