// Package senderbench measures the sender against a real SMTP sink and a
// real redis-server: its throughput against go-mail writing the same mail
// straight to the sink, the transactional lane's latency under a bulk send,
// Redis memory per message, and throughput to a distant relay. See
// docs/benchmarks.md for the method and the numbers.
package senderbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paperroute/paperroute/bench/internal/redisproc"
	"github.com/paperroute/paperroute/bench/internal/sink"
)

// Benchmarks lists the benchmarks in the order Run runs them.
var Benchmarks = []string{"throughput", "redis-memory", "latency"}

// Config says what to run.
type Config struct {
	// Benchmarks to run, from Benchmarks.
	Benchmarks []string
	// Messages is the bulk send's size.
	Messages int
	// Conns is the number of SMTP connections of the throughput benchmark,
	// for go-mail and the sender alike.
	Conns int
	// Workers is the sender's delivery workers sharing the Conns
	// connections.
	Workers int
	// Rounds repeats the throughput pair (go-mail, then the sender) to see
	// the spread on a busy machine.
	Rounds int
	// SenderEnv is added to the sender's environment in every benchmark.
	SenderEnv []string
	// MemoryMessages is the queue size of the memory benchmark.
	MemoryMessages int
	// LatencyMessages, LatencyConns and RTT shape the latency benchmark:
	// the relay is RTT/2 away each way.
	LatencyMessages int
	LatencyConns    int
	LatencyWorkers  int
	RTT             time.Duration
	// LatencySenderEnv configures the sender of the latency benchmark
	// (after SenderEnv), e.g. its connection count.
	LatencySenderEnv []string
	// Sink is "auto" (smtp-sink, else go-smtp), "smtp-sink" or "go-smtp".
	Sink string
	// CacheDir keeps the unpacked postfix package between runs.
	CacheDir string
	// OutDir receives the JSON result files.
	OutDir string
	// CPUProfile, if set, is where the sender of the throughput benchmark
	// writes a CPU profile (go tool pprof); Redis' INFO commandstats of that
	// send go to CPUProfile + ".redis-commandstats.txt".
	CPUProfile string
	// Out receives the summary lines.
	Out io.Writer
}

// Run runs the configured benchmarks in order.
func Run(ctx context.Context, cfg Config) error {
	for _, b := range cfg.Benchmarks {
		if !slices.Contains(Benchmarks, b) {
			return fmt.Errorf("senderbench: unknown benchmark %q (have %s)", b, strings.Join(Benchmarks, ", "))
		}
	}
	if cfg.Messages < 1 || cfg.Conns < 1 || cfg.Rounds < 1 || cfg.Workers < 1 {
		return errors.New("senderbench: messages, conns, workers and rounds must be positive")
	}
	if slices.Contains(cfg.Benchmarks, "latency") && (cfg.LatencyConns < 1 || cfg.LatencyWorkers < 1 || cfg.RTT <= 0) {
		return errors.New("senderbench: latency conns, workers and RTT must be positive")
	}
	work, err := os.MkdirTemp("", "senderbench-")
	if err != nil {
		return fmt.Errorf("senderbench: %w", err)
	}
	defer os.RemoveAll(work)
	sk, err := newSinkMaker(ctx, cfg)
	if err != nil {
		return err
	}
	e := &env{cfg: cfg, work: work, sinks: sk}
	for _, b := range cfg.Benchmarks {
		var err error
		switch b {
		case "throughput":
			err = e.throughput(ctx)
		case "redis-memory":
			err = e.redisMemory(ctx)
		case "latency":
			err = e.latency(ctx)
		}
		if err != nil {
			return fmt.Errorf("senderbench: %s: %w", b, err)
		}
	}
	return nil
}

// env is what the benchmarks share.
type env struct {
	cfg   Config
	work  string
	sinks *sinkMaker
	n     int // for unique directory names
}

func (e *env) dir(name string) (string, error) {
	e.n++
	d := filepath.Join(e.work, fmt.Sprintf("%02d-%s", e.n, name))
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("senderbench: %w", err)
	}
	return d, nil
}

func (e *env) redis(ctx context.Context, name string) (*redisproc.Server, error) {
	d, err := e.dir(name)
	if err != nil {
		return nil, err
	}
	return redisproc.Start(ctx, d)
}

// sinkMaker starts sinks of the kind chosen once per run.
type sinkMaker struct {
	kind   sink.Kind
	pfDir  string
	reason string // why go-smtp was used in auto mode
}

func newSinkMaker(ctx context.Context, cfg Config) (*sinkMaker, error) {
	switch cfg.Sink {
	case string(sink.GoSMTP):
		return &sinkMaker{kind: sink.GoSMTP}, nil
	case "auto", string(sink.Postfix):
		dir, err := sink.InstallPostfix(ctx, cfg.CacheDir)
		if err == nil {
			return &sinkMaker{kind: sink.Postfix, pfDir: dir}, nil
		}
		if cfg.Sink == string(sink.Postfix) {
			return nil, err
		}
		fmt.Fprintf(cfg.Out, "senderbench: smtp-sink unavailable (%v); using the go-smtp sink\n", err)
		return &sinkMaker{kind: sink.GoSMTP, reason: err.Error()}, nil
	}
	return nil, fmt.Errorf("senderbench: unknown sink %q (want auto, smtp-sink or go-smtp)", cfg.Sink)
}

// start runs a new sink on addr ("" for a free loopback port).
func (m *sinkMaker) start(ctx context.Context, addr string) (*sink.Sink, error) {
	if addr == "" {
		port, err := redisproc.FreePort()
		if err != nil {
			return nil, err
		}
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	if m.kind == sink.Postfix {
		return sink.Start(ctx, sink.Postfix, addr, sink.PostfixCommand(m.pfDir, addr))
	}
	cmd, err := roleCommand("gosink", addrEnv+"="+addr)
	if err != nil {
		return nil, err
	}
	return sink.Start(ctx, sink.GoSMTP, addr, cmd)
}

func stopSink(s *sink.Sink) { _ = s.Stop(2 * time.Second) }

// runID names a run's messages, so keys never repeat across runs.
func runID() string { return strconv.FormatInt(time.Now().UnixNano()%1e9, 36) }
