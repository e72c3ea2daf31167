// Package devmode is `paperroute dev`: the whole product on one machine with
// nothing to configure. It starts (or reuses) Redis, an SMTP catcher that
// files every mail under var/mail, the three services, loads the bundled
// sample papers, puts a demo subscriber through the real double opt-in, and
// delivers today's digest to them.
package devmode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/cmd/paperroute/internal/stack"
	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/platform/grpcclient"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/mailcatcher"
)

// Options configure a dev run.
type Options struct {
	// VarDir holds everything the dev stack keeps: Redis data, caught mail,
	// generated secrets, the log file. Usually ./var.
	VarDir string
	// Stdout receives the banner; Stderr receives warnings and errors.
	Stdout, Stderr io.Writer
	// Now is the clock for the demo edition; nil means time.Now.
	Now func() time.Time
	// Ready, if set, is called with the demo's outcome once the banner is
	// printed.
	Ready func(Demo)
}

// Demo is the outcome of the demo, for Options.Ready.
type Demo struct {
	Addrs    stack.Addrs
	Redis    RedisKind
	EMLPath  string
	HTMLPath string
}

// Run runs the dev stack until ctx is done.
func Run(ctx context.Context, getenv func(string) string, opts Options) error {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	mailDir := filepath.Join(opts.VarDir, "mail")
	if err := os.MkdirAll(mailDir, 0o755); err != nil {
		return fmt.Errorf("devmode: %w", err)
	}
	unlock, err := lockVarDir(opts.VarDir)
	if err != nil {
		return err
	}
	defer unlock()
	logFile, err := os.OpenFile(filepath.Join(opts.VarDir, "paperroute.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("devmode: %w", err)
	}
	defer logFile.Close()
	log, err := devLogger(getenv, opts.Stderr, logFile)
	if err != nil {
		return err
	}

	sec, err := loadSecrets(getenv, opts.VarDir)
	if err != nil {
		return err
	}
	rdb, err := startRedis(ctx, getenv, opts.VarDir, log)
	if err != nil {
		return err
	}
	defer rdb.stop()

	smtpAddr := getenv("PAPERROUTE_DEV_SMTP_ADDR")
	if smtpAddr == "" {
		smtpAddr = "127.0.0.1:2525"
	}
	catcher, err := mailcatcher.Start(smtpAddr, mailcatcher.Options{Dir: mailDir, Logger: log.With("component", "mailcatcher")})
	if err != nil {
		return fmt.Errorf("devmode: SMTP catcher (set PAPERROUTE_DEV_SMTP_ADDR to use another address): %w", err)
	}
	defer catcher.Close()

	env := envload.MapGetenv(map[string]string{
		"REDIS_URL":                 rdb.url,
		"PAPERROUTE_ADMIN_TOKEN":    sec.AdminToken,
		"PAPERROUTE_SERVICE_TOKEN":  sec.ServiceToken,
		"SUBSCRIBER_TOKEN_KEYS":     sec.TokenKeys,
		"SUBSCRIBER_EMAIL_HASH_KEY": sec.EmailHashKey,
		"SENDER_SMTP_ADDR":          catcher.Addr(),
		"SENDER_SMTP_TLS":           "none",
		"DIGEST_POSTAL_ADDRESS":     or(getenv("DIGEST_POSTAL_ADDRESS"), "paperroute dev (local), no postal address"),
		// The dev stack never reaches the internet by itself: it runs on the
		// bundled sample. Set DIGEST_SOURCES (e.g. to hf) to poll for real.
		"DIGEST_SOURCES": or(getenv("DIGEST_SOURCES"), "off"),
	}, getenv)
	st, err := stack.Listen(env)
	if err != nil {
		return fmt.Errorf("devmode: %w (is another paperroute running? every address can be changed, see docs/configuration.md)", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stackErr := make(chan error, 1)
	go func() { stackErr <- st.Run(ctx, log) }()

	c, closeClients, err := dial(st.Addrs(), sec.AdminToken)
	if err != nil {
		cancel()
		<-stackErr
		return err
	}
	defer closeClients()

	demoErr := make(chan error, 1)
	var demo demoResult
	go func() {
		var err error
		demo, err = runDemo(ctx, c, catcher, mailDir, opts.Now())
		demoErr <- err
	}()
	select {
	case err := <-stackErr:
		return fmt.Errorf("devmode: %w", err)
	case err := <-demoErr:
		if err != nil {
			cancel()
			<-stackErr
			return fmt.Errorf("devmode: demo digest: %w (details in %s)", err, logFile.Name())
		}
	}
	printBanner(opts.Stdout, bannerData{
		Addrs: st.Addrs(), Redis: rdb.desc, SMTP: catcher.Addr(), MailDir: mailDir,
		AdminToken: sec.AdminToken, AdminTokenPath: sec.AdminTokenPath, Demo: demo, LogPath: logFile.Name(),
	})
	if opts.Ready != nil {
		opts.Ready(Demo{Addrs: st.Addrs(), Redis: rdb.kind, EMLPath: demo.EMLPath, HTMLPath: demo.HTMLPath})
	}
	if err := <-stackErr; err != nil {
		return fmt.Errorf("devmode: %w", err)
	}
	return nil
}

func dial(a stack.Addrs, token string) (clients, func(), error) {
	var conns []*grpc.ClientConn
	closeAll := func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}
	open := func(addr string) (*grpc.ClientConn, error) {
		c, err := grpcclient.New(addr, token)
		if err != nil {
			return nil, fmt.Errorf("devmode: %w", err)
		}
		conns = append(conns, c)
		return c, nil
	}
	sub, err := open(a.SubscriberGRPC)
	if err != nil {
		return clients{}, closeAll, err
	}
	dig, err := open(a.DigestGRPC)
	if err != nil {
		closeAll()
		return clients{}, func() {}, err
	}
	snd, err := open(a.SenderGRPC)
	if err != nil {
		closeAll()
		return clients{}, func() {}, err
	}
	return clients{
		subscriber: subscriberv1.NewSubscriberServiceClient(sub),
		digest:     digestv1.NewDigestServiceClient(dig),
		sender:     senderv1.NewSenderServiceClient(snd),
	}, closeAll, nil
}

func or(v, fallback string) string {
	if v != "" {
		return v
	}
	return fallback
}

// devLogger writes warnings and errors (or LOG_LEVEL) to the console as text
// and everything from info up to the log file as JSON.
func devLogger(getenv func(string) string, console, file io.Writer) (*slog.Logger, error) {
	level := getenv("LOG_LEVEL")
	if level == "" {
		level = "warn"
	}
	con, err := logging.New(console, "text", level)
	if err != nil {
		return nil, errors.New("devmode: " + err.Error())
	}
	all, err := logging.New(file, "json", "info")
	if err != nil {
		return nil, err
	}
	return slog.New(slog.NewMultiHandler(con.Handler(), all.Handler())), nil
}
