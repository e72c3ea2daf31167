package replicas_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/paperroute/paperroute/services/digest/digestd"
	"github.com/paperroute/paperroute/services/sender/senderd"
	"github.com/paperroute/paperroute/services/subscriber/subscriberd"
)

// childEnv names the service a re-executed test binary runs.
const childEnv = "PAPERROUTE_REPLICAS_CHILD"

// TestMain runs a service instead of the tests when the binary is a child
// started by the test: a real process, with its gRPC and HTTP listeners
// handed over as file descriptors 3 and 4 (bound by the parent, so it knows
// every address before any process starts).
func TestMain(m *testing.M) {
	svc := os.Getenv(childEnv)
	if svc == "" {
		os.Exit(m.Run())
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	grpcLis, err := net.FileListener(os.NewFile(3, "grpc"))
	if err != nil {
		fmt.Fprintln(os.Stderr, svc, "grpc listener:", err)
		os.Exit(2)
	}
	httpLis, err := net.FileListener(os.NewFile(4, "http"))
	if err != nil {
		fmt.Fprintln(os.Stderr, svc, "http listener:", err)
		os.Exit(2)
	}
	switch svc {
	case "subscriber":
		err = subscriberd.Run(ctx, os.Getenv, subscriberd.Deps{Logger: log, GRPCListener: grpcLis, HTTPListener: httpLis})
	case "digest":
		err = digestd.Run(ctx, os.Getenv, digestd.Deps{Logger: log, GRPCListener: grpcLis, HTTPListener: httpLis})
	case "sender":
		err = senderd.Run(ctx, os.Getenv, senderd.Deps{Logger: log, GRPCListener: grpcLis, HTTPListener: httpLis})
	default:
		err = fmt.Errorf("unknown service %q", svc)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, svc+":", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// process is one service replica running as a child process.
type process struct {
	name               string
	grpcAddr, httpAddr string
	grpcLis, httpLis   *net.TCPListener
	cmd                *exec.Cmd
	done               chan struct{}
}

// bind reserves the two listeners of a replica, so that its address can be
// given to its peers before it starts.
func bind(t *testing.T, name string) *process {
	t.Helper()
	p := &process{name: name, done: make(chan struct{})}
	for _, l := range []**net.TCPListener{&p.grpcLis, &p.httpLis} {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		*l = lis.(*net.TCPListener)
		t.Cleanup(func() { _ = lis.Close() })
	}
	p.grpcAddr, p.httpAddr = p.grpcLis.Addr().String(), p.httpLis.Addr().String()
	return p
}

// start runs the replica as a child process with env (plus its own
// addresses); its stderr goes to logs, prefixed with its name.
func (p *process) start(t *testing.T, svc string, env map[string]string, logs *syncBuffer) {
	t.Helper()
	files := make([]*os.File, 2)
	for i, l := range []*net.TCPListener{p.grpcLis, p.httpLis} {
		f, err := l.File() // a dup: the child gets its own descriptor
		if err != nil {
			t.Fatal(err)
		}
		files[i] = f
	}
	prefix := strings.ToUpper(svc)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{childEnv + "=" + svc, "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		prefix + "_GRPC_ADDR=" + p.grpcAddr, prefix + "_HTTP_ADDR=" + p.httpAddr}
	for k, v := range env {
		if k != prefix+"_GRPC_ADDR" && k != prefix+"_HTTP_ADDR" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.ExtraFiles = files
	cmd.Stderr = &prefixWriter{b: logs, prefix: p.name + ": "}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	for _, f := range files {
		_ = f.Close()
	}
	// The parent's copies are closed, so that a killed child's ports stop
	// answering as they would in production.
	_ = p.grpcLis.Close()
	_ = p.httpLis.Close()
	p.cmd = cmd
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
}

// terminate asks a started process to shut down (SIGTERM) without waiting.
func (p *process) terminate() {
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
}

// kill sends SIGKILL and waits until the process is gone.
func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill %s: %v", p.name, err)
	}
	<-p.done
}

// metrics reads the replica's /metrics and returns each sample line's value
// by its name with labels as printed (e.g. `digest_poller_leader`,
// `sender_messages_sent_total{lane="bulk"}`).
func (p *process) metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.httpAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s /metrics: %s", p.name, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// healthy reports whether the replica's /healthz answers 200.
func (p *process) healthy(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.httpAddr+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// sum adds the values of the samples named name (any labels).
func sum(m map[string]float64, name string) float64 {
	total := 0.0
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			total += v
		}
	}
	return total
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

func (s *syncBuffer) tail() string {
	str := s.String()
	if len(str) > 8000 {
		str = "…" + str[len(str)-8000:]
	}
	return str
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
