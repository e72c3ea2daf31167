// Command senderbench runs the sender benchmarks (make bench): go-mail
// against the sender on the same SMTP sink, Redis memory per message, and
// a relay 20 ms away. Results go to bench/results as JSON, one summary line
// per benchmark to stdout. See docs/benchmarks.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/paperroute/paperroute/bench/senderbench"
)

func main() {
	senderbench.RunRole() // child processes of a run exit here
	cache, _ := os.UserCacheDir()
	messages := 100000
	if v, err := strconv.Atoi(os.Getenv("BENCH_MESSAGES")); err == nil && v > 0 {
		messages = v
	}
	cfg := senderbench.Config{Out: os.Stdout}
	var benches, senderEnv, latencyEnv string
	flag.StringVar(&benches, "bench", strings.Join(senderbench.Benchmarks, ","), "benchmarks to run, comma-separated")
	flag.IntVar(&cfg.Messages, "messages", messages, "messages in the bulk send (env BENCH_MESSAGES)")
	flag.IntVar(&cfg.Conns, "conns", 4, "SMTP connections of the throughput benchmark")
	flag.IntVar(&cfg.Workers, "workers", 0, "sender delivery workers sharing the connections (default 4 per connection)")
	flag.IntVar(&cfg.Rounds, "rounds", 1, "go-mail/sender pairs of the throughput benchmark")
	flag.StringVar(&senderEnv, "sender-env", "", "extra sender environment, comma-separated KEY=VALUE")
	flag.IntVar(&cfg.MemoryMessages, "memory-messages", 0, "queue size of the redis-memory benchmark (default min(messages, 20000))")
	flag.IntVar(&cfg.LatencyMessages, "latency-messages", 0, "messages of the latency benchmark (default min(messages, 10000))")
	flag.IntVar(&cfg.LatencyConns, "latency-conns", 64, "SMTP connections of the latency benchmark")
	flag.IntVar(&cfg.LatencyWorkers, "latency-workers", 0, "sender workers of the latency benchmark (default 2 × connections)")
	flag.DurationVar(&cfg.RTT, "rtt", 20*time.Millisecond, "round-trip time to the relay in the latency benchmark")
	flag.StringVar(&latencyEnv, "latency-sender-env", "", "extra sender environment of the latency benchmark")
	flag.StringVar(&cfg.Sink, "sink", "auto", "auto, smtp-sink or go-smtp")
	flag.StringVar(&cfg.CacheDir, "cache", filepath.Join(cache, "paperroute-bench", "postfix"), "where the postfix package is unpacked")
	flag.StringVar(&cfg.OutDir, "out", "results", "directory for the JSON results")
	flag.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write the sender's CPU profile of the throughput benchmark here")
	flag.Parse()
	cfg.Benchmarks = split(benches)
	cfg.SenderEnv = split(senderEnv)
	cfg.LatencySenderEnv = split(latencyEnv)
	if cfg.Workers == 0 {
		cfg.Workers = 4 * cfg.Conns
	}
	if cfg.LatencyWorkers == 0 {
		cfg.LatencyWorkers = 2 * cfg.LatencyConns
	}
	if cfg.MemoryMessages == 0 {
		cfg.MemoryMessages = min(cfg.Messages, 20000)
	}
	if cfg.LatencyMessages == 0 {
		cfg.LatencyMessages = min(cfg.Messages, 10000)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := senderbench.Run(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func split(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
