// Package redistest starts a private redis-server for tests: on a free
// loopback port, with its data in a temporary directory, and with Kill and
// Restart so tests can check what survives a crash.
//
// A missing redis-server binary fails the test (it is never skipped): install
// it with `apt-get install redis-server`.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Option changes how the server is started.
type Option func(*options)

type options struct {
	appendOnly  bool
	appendFsync string
	tls         *tlsFiles
	clusterPort bool // a cluster node: also a free cluster bus port
}

type tlsFiles struct {
	cert, key, ca     string
	requireClientCert bool
}

// WithTLS also serves TLS on a second port (TLSURL), with the server
// certificate and key in PEM files and caFile verifying client
// certificates; requireClientCert is Redis's tls-auth-clients. The plain
// port stays open for the test's own checks (Client, URL).
func WithTLS(certFile, keyFile, caFile string, requireClientCert bool) Option {
	return func(o *options) { o.tls = &tlsFiles{certFile, keyFile, caFile, requireClientCert} }
}

// WithAppendFsync sets AOF's appendfsync policy ("always", "everysec" or
// "no"). The default is "everysec".
func WithAppendFsync(policy string) Option {
	return func(o *options) { o.appendFsync = policy }
}

// WithoutAppendOnly runs the server with no persistence at all.
func WithoutAppendOnly() Option {
	return func(o *options) { o.appendOnly = false }
}

// Server is a running redis-server owned by one test.
type Server struct {
	t       testing.TB
	bin     string
	dir     string
	port    int
	tlsPort int
	busPort int
	opts    options

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// Start starts a redis-server for t and stops it when t ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server not found in PATH (install it: apt-get install redis-server): %v", err)
	}
	o := options{appendOnly: true, appendFsync: "everysec"}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), opts: o}
	var lastErr error
	for range 5 {
		s.port, err = freePort()
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		if o.tls != nil {
			if s.tlsPort, err = freePort(); err != nil {
				t.Fatalf("redistest: %v", err)
			}
		}
		if o.clusterPort {
			if s.busPort, err = freePort(); err != nil {
				t.Fatalf("redistest: %v", err)
			}
		}
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("redistest: %v", lastErr)
	return nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr() }

// TLSURL is the server's rediss:// URL (with WithTLS), naming the host
// localhost so the server name is checked against the certificate.
func (s *Server) TLSURL() string {
	return "rediss://" + net.JoinHostPort("localhost", strconv.Itoa(s.tlsPort))
}

// Dir is the server's data directory (AOF files live here).
func (s *Server) Dir() string { return s.dir }

// Client returns a new client for the server, closed when the test ends.
func (s *Server) Client() redis.UniversalClient {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Kill stops the server with SIGKILL, as a crash would: nothing is flushed
// beyond what the fsync policy already wrote.
func (s *Server) Kill() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts the server again on the same port and data directory after
// Kill or Stop; an AOF server reloads its data.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	var err error
	for range 50 { // the port can take a moment to be free again
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restart: %v", err)
}

// Stop shuts the server down. It is called automatically when the test ends.
func (s *Server) Stop() { s.Kill() }

func (s *Server) start() error {
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--daemonize", "no",
		"--logfile", filepath.Join(s.dir, "redis.log"),
		"--maxmemory-policy", "noeviction",
	}
	if t := s.opts.tls; t != nil {
		auth := "no"
		if t.requireClientCert {
			auth = "yes"
		}
		args = append(args, "--tls-port", strconv.Itoa(s.tlsPort), "--tls-cert-file", t.cert,
			"--tls-key-file", t.key, "--tls-ca-cert-file", t.ca, "--tls-auth-clients", auth)
	}
	if s.opts.clusterPort {
		args = append(args, "--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(s.busPort),
			"--cluster-config-file", filepath.Join(s.dir, "nodes.conf"), "--cluster-node-timeout", "2000")
	}
	if s.opts.appendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", s.opts.appendFsync)
	} else {
		args = append(args, "--appendonly", "no")
	}
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()

	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited at start (%v): %s", waitErr, s.logTail())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			s.mu.Lock()
			s.cmd, s.exited = cmd, exited
			s.mu.Unlock()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("redis-server did not answer PING within 10s: %s", s.logTail())
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
