package service

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/paperroute/paperroute/platform/logging"
)

// RunFunc is a service's entry point, its <svc>d.Run.
type RunFunc func(ctx context.Context, getenv func(string) string, deps Deps) error

// Main is the whole main of a service binary: it runs the service until
// SIGINT or SIGTERM and returns the process exit code.
//
//	func main() { os.Exit(service.Main("sender", senderd.Run)) }
func Main(name string, run RunFunc) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Command(ctx, name, run, os.Getenv, os.Stderr)
}

// Command runs a service with logs on stderr in the format LOG_FORMAT and
// level LOG_LEVEL name, and returns the exit code: 0 after a clean shutdown,
// 1 on failure. A failure is reported exactly once, as one log line.
func Command(ctx context.Context, name string, run RunFunc, getenv func(string) string, stderr io.Writer) int {
	log, err := logging.New(stderr, getenv("LOG_FORMAT"), getenv("LOG_LEVEL"))
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if err := run(ctx, getenv, Deps{Logger: log}); err != nil {
		log.ErrorContext(ctx, name+" failed", "err", err)
		return 1
	}
	log.InfoContext(ctx, "successful shutdown")
	return 0
}
