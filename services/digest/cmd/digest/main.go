// Command digest runs the paperroute digest service: papers, rendering and
// digest runs. Configuration comes from the environment (see the service's
// README.md); the process stops gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/paperroute/paperroute/platform/logging"

	"github.com/paperroute/paperroute/services/digest/digestd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		os.Exit(1) // run has reported the error
	}
}

// run builds the logger from LOG_FORMAT and LOG_LEVEL and runs the service
// until ctx is done. Logs go to stderr; stdout is unused.
func run(ctx context.Context, getenv func(string) string, _, stderr io.Writer) error {
	log, err := logging.New(stderr, getenv("LOG_FORMAT"), getenv("LOG_LEVEL"))
	if err != nil {
		fmt.Fprintf(stderr, "digest: %v\n", err)
		return err
	}
	if err := digestd.Run(ctx, getenv, digestd.Deps{Logger: log}); err != nil {
		log.Error("digest service failed", "err", err)
		return err
	}
	log.Info("successful shutdown")
	return nil
}
