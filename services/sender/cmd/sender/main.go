// Command sender runs the sender service: it queues mail in Redis Streams
// and delivers it over SMTP. Configuration comes from the environment (see
// services/sender/README.md).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/services/sender/senderd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sender:", err)
		os.Exit(1)
	}
}

// run builds the logger and runs the service until ctx is done. Logs go to
// stderr; stdout is unused.
func run(ctx context.Context, getenv func(string) string, _, stderr io.Writer) error {
	log, err := logging.New(stderr, getenv("LOG_FORMAT"), getenv("LOG_LEVEL"))
	if err != nil {
		return err
	}
	if err := senderd.Run(ctx, getenv, senderd.Deps{Logger: log}); err != nil {
		return err // main reports it, once
	}
	log.InfoContext(ctx, "successful shutdown")
	return nil
}
