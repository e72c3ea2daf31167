package senderbench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/paperroute/paperroute/bench/internal/latproxy"
	"github.com/paperroute/paperroute/bench/internal/sink"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/services/sender/senderd"
)

// The benchmark's child processes are this same executable started with
// roleEnv set: a sender (senderd.Run, as cmd/sender runs it), the go-smtp
// sink, or the latency proxy. Each is a process of its own so that its CPU
// time and memory are read from /proc separately.
const (
	roleEnv       = "SENDERBENCH_ROLE"
	addrEnv       = "SENDERBENCH_ADDR"
	targetEnv     = "SENDERBENCH_TARGET"
	delayEnv      = "SENDERBENCH_DELAY"
	cpuProfileEnv = "SENDERBENCH_CPUPROFILE"
)

// RunRole runs this process as a child role when roleEnv says so, and
// exits; it returns without doing anything otherwise. Call it first in main
// (and in TestMain of tests that start roles).
func RunRole() {
	role := os.Getenv(roleEnv)
	if role == "" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runRole(ctx, role)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "senderbench %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runRole(ctx context.Context, role string) error {
	switch role {
	case "sender":
		return runSender(ctx)
	case "gosink":
		return sink.ServeGoSMTP(ctx, os.Getenv(addrEnv), os.Stdout)
	case "proxy":
		delay, err := time.ParseDuration(os.Getenv(delayEnv))
		if err != nil {
			return fmt.Errorf("%s: %w", delayEnv, err)
		}
		l, err := net.Listen("tcp", os.Getenv(addrEnv))
		if err != nil {
			return err
		}
		return latproxy.Serve(ctx, l, os.Getenv(targetEnv), delay)
	}
	return fmt.Errorf("unknown role %q", role)
}

// runSender runs the sender service, optionally under the CPU profiler.
func runSender(ctx context.Context) error {
	if path := os.Getenv(cpuProfileEnv); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	log, err := logging.New(os.Stderr, "text", os.Getenv("LOG_LEVEL"))
	if err != nil {
		return err
	}
	return senderd.Run(ctx, os.Getenv, senderd.Deps{Logger: log})
}

// roleCommand is a command that runs this executable as role, with the
// extra environment variables env.
func roleCommand(role string, env ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("senderbench: find own executable: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(append(os.Environ(), roleEnv+"="+role), env...)
	return cmd, nil
}
