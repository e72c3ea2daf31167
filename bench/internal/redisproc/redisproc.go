// Package redisproc runs a private redis-server for a benchmark: a free
// loopback port, data in a directory of the caller's, AOF with fsync every
// second (the durability the sender is specified with) and noeviction.
package redisproc

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/bench/internal/proc"
)

// Server is a running redis-server.
type Server struct {
	*proc.Process
	Addr   string
	Client *redis.Client
}

// Start starts redis-server with its data in dir.
func Start(ctx context.Context, dir string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redisproc: redis-server not in PATH (apt-get install redis-server): %w", err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log"),
		"--appendonly", "yes", "--appendfsync", "everysec",
		"--maxmemory-policy", "noeviction")
	p, err := proc.Start(ctx, "redis-server", cmd)
	if err != nil {
		return nil, err
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	deadline := time.Now().Add(10 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err = c.Ping(pctx).Err()
		cancel()
		if err == nil {
			return &Server{Process: p, Addr: addr, Client: c}, nil
		}
		select {
		case <-p.Exited():
			return nil, fmt.Errorf("redisproc: redis-server exited at start: %s", p.Log())
		default:
		}
		if time.Now().After(deadline) {
			_ = p.Stop(time.Second)
			return nil, fmt.Errorf("redisproc: no PING answer within 10s: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr }

// UsedMemory is INFO memory's used_memory in bytes.
func (s *Server) UsedMemory(ctx context.Context) (int64, error) {
	info, err := s.Client.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("redisproc: INFO memory: %w", err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("redisproc: INFO memory has no used_memory")
}

// Close stops the server.
func (s *Server) Close() {
	_ = s.Client.Close()
	_ = s.Stop(5 * time.Second)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redisproc: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
