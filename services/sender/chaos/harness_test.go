package chaos_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/platform/redistest"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
	"github.com/paperroute/paperroute/services/sender/senderd"
)

// childEnv marks the test binary re-executed as a sender process.
const childEnv = "PAPERROUTE_SENDER_CHAOS_CHILD"

const partitions = 4

// TestMain runs the sender service instead of the tests when the binary is
// a child started by a test: a real process that can be killed.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		err := senderd.Run(ctx, os.Getenv, senderd.Deps{Logger: log})
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "sender:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// world is a redis-server and a relay shared by sender processes.
type world struct {
	t     *testing.T
	redis *redistest.Server
	rdb   redis.UniversalClient
	relay *relay
	store *redisstore.Store
	logs  *syncBuffer
}

func newWorld(t *testing.T, opts ...redistest.Option) *world {
	t.Helper()
	r := redistest.Start(t, opts...)
	w := &world{t: t, redis: r, rdb: r.Client(), relay: startRelay(t), logs: &syncBuffer{}}
	w.store = redisstore.New(w.rdb, partitions)
	if err := w.store.EnsureGroups(testContext(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	return w
}

// process is one running sender child process.
type process struct {
	cmd  *exec.Cmd
	done chan error
}

// start runs a sender process on the world's Redis and relay.
func (w *world) start(name string, overrides map[string]string) *process {
	w.t.Helper()
	env := map[string]string{
		childEnv:                   "1",
		"REDIS_URL":                w.redis.URL(),
		"SENDER_SMTP_ADDR":         w.relay.addr,
		"SENDER_SMTP_TLS":          "none",
		"SENDER_GRPC_ADDR":         "127.0.0.1:0",
		"SENDER_HTTP_ADDR":         "127.0.0.1:0",
		"PAPERROUTE_ADMIN_TOKEN":   "chaos-admin",
		"PAPERROUTE_SERVICE_TOKEN": "chaos-service",
		"SENDER_PARTITIONS":        fmt.Sprint(partitions),
		"SENDER_WORKERS":           "4",
		"SENDER_SMTP_TIMEOUT":      "1s",
		"SENDER_LEASE":             "2s",
		"SENDER_RETRY_AFTER":       "300ms",
		"SENDER_RETRY_MAX_DELAY":   "1s",
		"SHUTDOWN_GRACE":           "1s",
		"SENDER_CONSUMER":          name,
	}
	for k, v := range overrides {
		env[k] = v
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
	cmd.Stderr = &prefixWriter{b: w.logs, prefix: name + ": "}
	if err := cmd.Start(); err != nil {
		w.t.Fatalf("start %s: %v", name, err)
	}
	p := &process{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	w.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p.done <- nil // for the cleanup
}

func (p *process) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// enqueue queues n bulk messages to rcpt(i) through the sender's own
// Service (acknowledged writes to the real store) and returns the keys.
func (w *world) enqueue(ctx context.Context, n int, key, rcpt func(i int) string) {
	w.t.Helper()
	svc := queue.NewService(w.store, nil)
	id, err := svc.PutContent(ctx, queue.Content{Subject: "Papers for {{name}}", Text: "Hello {{name}}", HTML: "<p>Hello {{name}}</p>"})
	if err != nil {
		w.t.Fatal(err)
	}
	for start := 0; start < n; start += queue.MaxBatch {
		var batch []queue.NewMessage
		for i := start; i < min(n, start+queue.MaxBatch); i++ {
			batch = append(batch, queue.NewMessage{
				IdempotencyKey: key(i), Recipient: rcpt(i), Lane: queue.LaneBulk, ContentID: id,
				Variables: map[string]string{"name": fmt.Sprint("reader ", i)}, ListUnsubscribeURL: "https://paperroute.example/u?i=" + fmt.Sprint(i),
			})
		}
		if _, err := svc.Enqueue(ctx, batch); err != nil {
			w.t.Fatal(err)
		}
	}
}

// waitFor polls cond every 10 ms until it holds or ctx ends.
func (w *world) waitFor(ctx context.Context, what string, cond func() bool) {
	w.t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			w.t.Fatalf("timed out waiting for %s\nsender logs:\n%s", what, w.logTail())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// states counts the message records by state.
func (w *world) states(ctx context.Context, keys []string) map[queue.State]int {
	w.t.Helper()
	out := map[queue.State]int{}
	for _, k := range keys {
		m, err := w.store.GetMessage(ctx, queue.MessageID(k))
		if err != nil {
			w.t.Fatalf("GetMessage %s: %v", k, err)
		}
		out[m.State]++
	}
	return out
}

func (w *world) logTail() string {
	s := w.logs.String()
	if len(s) > 8000 {
		s = "…" + s[len(s)-8000:]
	}
	return s
}

// duplicates lists the recipients that got more than one message.
func duplicates(got map[string]int) []string {
	var out []string
	for rcpt, n := range got {
		if n > 1 {
			out = append(out, fmt.Sprintf("%s×%d", rcpt, n))
		}
	}
	sort.Strings(out)
	return out
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// syncBuffer collects the children's stderr for failure reports.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// prefixWriter writes a child's stderr, line-prefixed, into a syncBuffer.
type prefixWriter struct {
	b      *syncBuffer
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			p.b.b.WriteString(p.prefix + line)
		}
	}
	return len(b), nil
}
