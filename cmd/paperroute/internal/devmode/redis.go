package devmode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// devRedis is the Redis the dev stack runs on.
type devRedis struct {
	url  string
	kind RedisKind
	desc string // for the banner
	stop func()
}

// RedisKind says which Redis the dev stack runs on.
type RedisKind string

// The Redis a dev stack can run on.
const (
	RedisExternal RedisKind = "external"     // REDIS_URL
	RedisServer   RedisKind = "redis-server" // a private redis-server from PATH
	RedisEmbedded RedisKind = "embedded"     // in-memory, not durable
)

// startRedis picks, in order: REDIS_URL when set; a redis-server from PATH
// with its AOF under varDir/redis; an embedded in-memory Redis (miniredis)
// that keeps nothing. PAPERROUTE_DEV_REDIS=embedded forces the last.
func startRedis(ctx context.Context, getenv func(string) string, varDir string, log *slog.Logger) (*devRedis, error) {
	switch mode := getenv("PAPERROUTE_DEV_REDIS"); mode {
	case "", "auto":
		if url := getenv("REDIS_URL"); url != "" {
			return &devRedis{url: url, kind: RedisExternal, desc: "REDIS_URL (yours)", stop: func() {}}, nil
		}
		if bin, err := exec.LookPath("redis-server"); err == nil {
			return startRedisServer(ctx, bin, filepath.Join(varDir, "redis"))
		}
		log.Warn("redis-server not found in PATH: using an embedded in-memory Redis. NOT DURABLE: everything is lost when paperroute stops. Install redis-server (apt-get install redis-server) for a real one.")
	case "embedded":
		log.Warn("PAPERROUTE_DEV_REDIS=embedded: using an embedded in-memory Redis. NOT DURABLE: everything is lost when paperroute stops.")
	default:
		return nil, fmt.Errorf("devmode: PAPERROUTE_DEV_REDIS=%q: want auto or embedded", mode)
	}
	m, err := miniredis.Run()
	if err != nil {
		return nil, fmt.Errorf("devmode: embedded redis: %w", err)
	}
	return &devRedis{url: "redis://" + m.Addr(), kind: RedisEmbedded, desc: "embedded in-memory Redis (NOT DURABLE)", stop: m.Close}, nil
}

func startRedisServer(ctx context.Context, bin, dir string) (*devRedis, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("devmode: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("devmode: find a port for redis-server: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()

	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
		"--maxmemory-policy", "noeviction",
		"--logfile", "redis.log", "--daemonize", "no")
	// redis-server dies with us even if we are killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("devmode: start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // clean shutdown flushes the AOF
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		err := c.Ping(pctx).Err()
		cancel()
		if err == nil {
			return &devRedis{url: "redis://" + addr, kind: RedisServer, desc: "redis://" + addr + " (redis-server, data in " + dir + ")", stop: stop}, nil
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("devmode: redis-server exited at start; see %s", filepath.Join(dir, "redis.log"))
		default:
		}
		if time.Now().After(deadline) || errors.Is(ctx.Err(), context.Canceled) {
			stop()
			return nil, fmt.Errorf("devmode: redis-server did not answer on %s; see %s", addr, filepath.Join(dir, "redis.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
