// Command subscriber runs paperroute's subscriber service: the gRPC API for
// sign-ups and subscriber lists, and the confirm/unsubscribe link pages.
// Configuration comes from environment variables; see the service README.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/services/subscriber/subscriberd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "subscriber:", err)
		os.Exit(1)
	}
}

// run builds the logger from LOG_FORMAT and LOG_LEVEL and runs the service
// until ctx is done.
func run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	log, err := logging.New(stdout, getenv("LOG_FORMAT"), getenv("LOG_LEVEL"))
	if err != nil {
		return err
	}
	if err := subscriberd.Run(ctx, getenv, subscriberd.Deps{Logger: log}); err != nil {
		log.ErrorContext(ctx, "subscriber failed", "err", err)
		return err
	}
	log.InfoContext(ctx, "successful shutdown")
	return nil
}
