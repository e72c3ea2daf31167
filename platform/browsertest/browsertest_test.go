package browsertest_test

import (
	"bytes"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/browsertest"
)

// page is a form that posts back to itself and shows what it got; an inline
// script (allowed by the page's own CSP) writes the browser's time zone into
// the form when scripts run.
const page = `<!DOCTYPE html><html><head><meta name="viewport" content="width=device-width, initial-scale=1"><title>t</title></head><body>
<form method="post" action="/echo"><input name="name" id="name"><select name="size" id="size"><option value="s">S</option><option value="l">L</option></select>
<input type="checkbox" name="ok" id="ok" value="yes"><input type="hidden" name="tz" id="tz" value="none"><button type="submit" id="go">Go</button></form>
<p id="tall" style="height:2000px">tall</p>
<script>document.getElementById("tz").value = Intl.DateTimeFormat().resolvedOptions().timeZone;</script>
</body></html>`

func server(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, page)
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, `<!DOCTYPE html><p id="got">`+r.PostForm.Encode()+`</p>`)
	})
	mux.HandleFunc("GET /throws", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, `<!DOCTYPE html><p id="x">x</p><script>throw new Error("boom")</script>`)
	})
	mux.HandleFunc("GET /csp", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		_, _ = io.WriteString(w, `<!DOCTYPE html><p id="x">x</p><script>document.title = "ran"</script>`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestFillClickAndRead(t *testing.T) {
	srv := server(t)
	b := browsertest.New(t, browsertest.WithTimezone("America/Chicago"))
	b.Navigate(srv.URL + "/")
	b.Fill("#name", "Ada Lovelace")
	b.SetValue("#size", "l")
	b.Click("#ok")
	if !b.Checked("#ok") {
		t.Error("checkbox not checked after a click")
	}
	if got := b.Value("#tz"); got != "America/Chicago" {
		t.Errorf("time zone seen by the page = %q, want America/Chicago", got)
	}
	b.Click("#go")
	b.WaitVisible("#got")
	if got, want := b.Text("#got"), "name=Ada+Lovelace&ok=yes&size=l&tz=America%2FChicago"; got != want {
		t.Errorf("posted %q, want %q", got, want)
	}
	if got := b.Location(); got != srv.URL+"/echo" {
		t.Errorf("location = %q", got)
	}
}

func TestWithoutJavaScript(t *testing.T) {
	srv := server(t)
	b := browsertest.New(t, browsertest.WithoutJavaScript())
	b.Navigate(srv.URL + "/")
	if got := b.Value("#tz"); got != "none" {
		t.Errorf("the inline script ran: tz = %q", got)
	}
}

func TestScreenshot(t *testing.T) {
	srv := server(t)
	b := browsertest.New(t)
	b.Navigate(srv.URL + "/")
	paths := b.Screenshot(t.TempDir(), "form")
	if len(paths) != 2 || !strings.HasSuffix(paths[0], "form-desktop.png") || !strings.HasSuffix(paths[1], "form-phone.png") {
		t.Fatalf("paths = %v", paths)
	}
	for i, want := range []int{browsertest.DesktopWidth, browsertest.PhoneWidth} {
		data, err := os.ReadFile(paths[i])
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", paths[i], err)
		}
		size := img.Bounds().Size()
		if size.X != want || size.Y < 2000 {
			t.Errorf("%s is %v, want width %d and the full page (>= 2000 px high)", paths[i], size, want)
		}
	}
}

func TestConsoleErrorsAreRecorded(t *testing.T) {
	srv := server(t)
	for _, tt := range []struct{ path, want string }{
		{"/throws", "boom"},
		{"/csp", "Content Security Policy"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			b := browsertest.New(t, browsertest.AllowConsoleErrors())
			b.Navigate(srv.URL + tt.path)
			b.WaitVisible("#x")
			// The console event arrives asynchronously: wait for it under a deadline.
			var errs []string
			for deadline := time.Now().Add(10 * time.Second); len(errs) == 0 && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
				errs = b.ConsoleErrors()
			}
			if !strings.Contains(strings.Join(errs, "\n"), tt.want) {
				t.Errorf("console errors = %q, want one with %q", errs, tt.want)
			}
		})
	}
}

func TestScreenshotDir(t *testing.T) {
	t.Setenv(browsertest.UpdateScreenshotsEnv, "")
	if dir := browsertest.ScreenshotDir(t, "committed"); dir == "committed" {
		t.Error("without UPDATE_SCREENSHOTS=1 the committed directory was used")
	}
	want := t.TempDir() + "/shots"
	t.Setenv(browsertest.UpdateScreenshotsEnv, "1")
	if dir := browsertest.ScreenshotDir(t, want); dir != want {
		t.Errorf("with UPDATE_SCREENSHOTS=1: %q, want %q", dir, want)
	}
	if _, err := os.Stat(want); err != nil {
		t.Error(err)
	}
}

// tb records what Require does instead of stopping the real test.
type tb struct {
	testing.TB
	skipped, failed string
}

func (r *tb) Helper()                      {}
func (r *tb) Skip(args ...any)             { r.skipped = fmt.Sprint(args...); runtime.Goexit() }
func (r *tb) Fatal(args ...any)            { r.failed = fmt.Sprint(args...); runtime.Goexit() }
func (r *tb) Skipf(f string, args ...any)  { r.Skip(fmt.Sprintf(f, args...)) }
func (r *tb) Fatalf(f string, args ...any) { r.Fatal(fmt.Sprintf(f, args...)) }

func TestRequireWithoutChromium(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no chromium here
	for _, tt := range []struct {
		ci                      string
		wantSkipped, wantFailed bool
	}{
		{ci: "", wantSkipped: true},
		{ci: "true", wantFailed: true},
	} {
		t.Setenv("CI", tt.ci)
		r := &tb{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			browsertest.Require(r)
		}()
		<-done
		if (r.skipped != "") != tt.wantSkipped || (r.failed != "") != tt.wantFailed {
			t.Errorf("CI=%q: skipped %q, failed %q", tt.ci, r.skipped, r.failed)
		}
		if msg := r.skipped + r.failed; !strings.Contains(msg, browsertest.InstallCommand) {
			t.Errorf("CI=%q: message %q does not say how to install chromium", tt.ci, msg)
		}
	}
}

// TestFrame drives a form inside a cross-site iframe: the page is served
// from localhost, the frame from 127.0.0.1.
func TestFrame(t *testing.T) {
	inner := server(t)
	outer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, `<!DOCTYPE html><h1 id="outer">outer</h1><iframe src="`+inner.URL+`/" style="width:600px;height:400px"></iframe>`)
	}))
	t.Cleanup(outer.Close)
	b := browsertest.New(t)
	b.Navigate(strings.Replace(outer.URL, "127.0.0.1", "localhost", 1))
	b.WaitVisible("#outer")
	f := b.Frame(inner.URL)
	f.Fill("#name", "in a frame")
	f.Click("#go")
	f.WaitVisible("#got")
	if got := f.Text("#got"); !strings.HasPrefix(got, "name=in+a+frame") {
		t.Errorf("the frame posted %q", got)
	}
}
