package devmode_test

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/paperroute/paperroute/cmd/paperroute/internal/devmode"
	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/mailcatcher"
)

func freeAddrs(extra map[string]string) func(string) string {
	m := map[string]string{
		"SUBSCRIBER_GRPC_ADDR":     "127.0.0.1:0",
		"SUBSCRIBER_HTTP_ADDR":     "127.0.0.1:0",
		"DIGEST_GRPC_ADDR":         "127.0.0.1:0",
		"DIGEST_HTTP_ADDR":         "127.0.0.1:0",
		"SENDER_GRPC_ADDR":         "127.0.0.1:0",
		"SENDER_HTTP_ADDR":         "127.0.0.1:0",
		"PAPERROUTE_DEV_SMTP_ADDR": "127.0.0.1:0",
	}
	for k, v := range extra {
		m[k] = v
	}
	// Nothing from the machine's environment leaks in (no REDIS_URL).
	return envload.MapGetenv(m, nil)
}

type devRun struct {
	demo   devmode.Demo
	stdout *logging.Buffer
	stderr *logging.Buffer
}

// runDev starts `paperroute dev` on varDir, waits for the demo digest, shuts
// it down and checks the shutdown was clean.
func runDev(t *testing.T, varDir string, getenv func(string) string) devRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := devRun{stdout: &logging.Buffer{}, stderr: &logging.Buffer{}}
	ready := make(chan devmode.Demo, 1)
	done := make(chan error, 1)
	go func() {
		done <- devmode.Run(ctx, getenv, devmode.Options{
			VarDir: varDir, Stdout: r.stdout, Stderr: r.stderr,
			Now:   func() time.Time { return time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC) },
			Ready: func(d devmode.Demo) { ready <- d },
		})
	}()
	select {
	case r.demo = <-ready:
	case err := <-done:
		t.Fatalf("dev mode stopped before the demo was delivered: %v\nstderr:\n%s", err, r.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("no demo digest within 60s\nstderr:\n%s", r.stderr)
	}
	// People without redis-server get the embedded fallback; CI never
	// passes on it: there the real redis-server must have been used.
	if os.Getenv("CI") != "" && getenv("PAPERROUTE_DEV_REDIS") != "embedded" && r.demo.Redis != devmode.RedisServer {
		t.Errorf("CI: dev mode ran on %q Redis, want a real redis-server from PATH (install redis-server)", r.demo.Redis)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev mode did not shut down cleanly: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev mode did not shut down within 30s")
	}
	return r
}

func checkDigest(t *testing.T, d devmode.Demo) {
	t.Helper()
	eml, err := os.ReadFile(d.EMLPath)
	if err != nil {
		t.Fatalf("the demo digest is not where the banner says: %v", err)
	}
	p, err := mailcatcher.Parse(eml)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Text, "EvoArena") || p.HTML == "" {
		t.Errorf("demo digest lacks the top paper or an HTML part")
	}
	if p.Header.Get("To") != "<demo@example.com>" && p.Header.Get("To") != "demo@example.com" {
		t.Errorf("demo digest To = %q", p.Header.Get("To"))
	}
	if _, err := os.Stat(d.HTMLPath); err != nil {
		t.Errorf("no browsable HTML next to the .eml: %v", err)
	}
}

func TestDevDeliversTheDemoDigestAndRestarts(t *testing.T) {
	varDir := t.TempDir()
	first := runDev(t, varDir, freeAddrs(nil))
	checkDigest(t, first.demo)
	out := first.stdout.String()
	for _, want := range []string{"Delivered the demo digest", first.demo.HTMLPath, "grpcurl -plaintext", "authorization: Bearer $TOKEN", "admin-token"} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
	// make run prints the front page, on the digest's HTTP port.
	front := "http://" + first.demo.Addrs.DigestHTTP + "/"
	if !strings.Contains(out, "front page "+front) {
		t.Errorf("banner does not print the front page %s:\n%s", front, out)
	}
	token, err := os.ReadFile(varDir + "/admin-token")
	if err != nil || len(strings.TrimSpace(string(token))) < 20 {
		t.Errorf("admin token file: %q, %v", token, err)
	}
	if !strings.Contains(out, "Admin token (dev only; also in "+varDir+"/admin-token): "+strings.TrimSpace(string(token))) {
		t.Errorf("banner does not print the generated admin token:\n%s", out)
	}

	// A second start on the same var dir keeps the data (AOF) and does not
	// mail the same edition twice; it points at the earlier mail instead.
	second := runDev(t, varDir, freeAddrs(nil))
	if second.demo.EMLPath != first.demo.EMLPath {
		t.Errorf("second run points at %s, want the first run's %s", second.demo.EMLPath, first.demo.EMLPath)
	}
	if !strings.Contains(second.stdout.String(), "already delivered") {
		t.Errorf("second banner does not say the digest was already delivered:\n%s", second.stdout)
	}
}

func TestDevRefusesASecondStackOnTheSameVarDir(t *testing.T) {
	varDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan devmode.Demo, 1)
	done := make(chan error, 1)
	go func() {
		done <- devmode.Run(ctx, freeAddrs(nil), devmode.Options{
			VarDir: varDir, Stdout: io.Discard, Stderr: io.Discard,
			Ready: func(d devmode.Demo) { ready <- d },
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("first stack: %v", err)
	}
	err := devmode.Run(ctx, freeAddrs(nil), devmode.Options{VarDir: varDir, Stdout: io.Discard, Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "in use by another paperroute dev") {
		t.Errorf("second stack on the same var dir: %v, want it refused", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("first stack: %v", err)
	}
}

func TestDevWithEmbeddedRedis(t *testing.T) {
	r := runDev(t, t.TempDir(), freeAddrs(map[string]string{"PAPERROUTE_DEV_REDIS": "embedded"}))
	checkDigest(t, r.demo)
	if r.demo.Redis != devmode.RedisEmbedded {
		t.Errorf("PAPERROUTE_DEV_REDIS=embedded ran on %q Redis", r.demo.Redis)
	}
	if !strings.Contains(r.stderr.String(), "NOT DURABLE") {
		t.Errorf("no loud not-durable warning on stderr:\n%s", r.stderr)
	}
}

func TestDevAdminTokenFromEnvironment(t *testing.T) {
	varDir := t.TempDir()
	r := runDev(t, varDir, freeAddrs(map[string]string{"PAPERROUTE_ADMIN_TOKEN": "operator-chosen-token-0123456789"}))
	checkDigest(t, r.demo)
	token, err := os.ReadFile(varDir + "/admin-token")
	if err != nil || strings.TrimSpace(string(token)) != "operator-chosen-token-0123456789" {
		t.Errorf("admin-token file = %q, %v; want the configured token", token, err)
	}
}
