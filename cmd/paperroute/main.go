// Command paperroute runs all three paperroute services in one process.
//
//	paperroute dev   everything on this machine with nothing to configure:
//	                 Redis, an SMTP catcher filing mail under ./var/mail, the
//	                 sample papers and a demo digest (what `make run` runs)
//	paperroute all   the three services in one process for small installs,
//	                 configured by the same environment variables as the
//	                 separate services (docs/configuration.md)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // subscribers' time zones load on any machine

	"github.com/paperroute/paperroute/cmd/paperroute/internal/devmode"
	"github.com/paperroute/paperroute/cmd/paperroute/internal/stack"
	"github.com/paperroute/paperroute/platform/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "paperroute:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  paperroute dev [-var DIR]   run everything locally with a demo digest (make run)
  paperroute all              run the three services in one process (production, small installs)
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "dev":
		fs := flag.NewFlagSet("dev", flag.ContinueOnError)
		fs.SetOutput(stderr)
		varDir := fs.String("var", "var", "directory for Redis data, caught mail, secrets and logs")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		err := devmode.Run(ctx, getenv, devmode.Options{VarDir: *varDir, Stdout: stdout, Stderr: stderr})
		if err == nil {
			fmt.Fprintln(stdout, "paperroute dev: successful shutdown")
		}
		return err
	case "all":
		log, err := logging.New(stderr, getenv("LOG_FORMAT"), getenv("LOG_LEVEL"))
		if err != nil {
			return err
		}
		st, err := stack.Listen(getenv)
		if err != nil {
			return err
		}
		if err := st.Run(ctx, log); err != nil {
			return err
		}
		log.Info("successful shutdown")
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
