package sink

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// ServeGoSMTP runs the go-smtp sink on addr until ctx is done, printing
// "mesg=N\r" to out after every message, as smtp-sink -c does.
func ServeGoSMTP(ctx context.Context, addr string, out io.Writer) error {
	b := &backend{out: out}
	srv := smtp.NewServer(b)
	srv.Addr = addr
	srv.Domain = "sink.bench.invalid"
	srv.AllowInsecureAuth = true
	srv.MaxMessageBytes = 64 << 20
	srv.MaxRecipients = 1000
	srv.ReadTimeout = 100 * time.Second
	srv.WriteTimeout = 100 * time.Second
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(l); err != nil && ctx.Err() == nil {
		return fmt.Errorf("sink: %w", err)
	}
	return nil
}

type backend struct {
	out io.Writer
	mu  sync.Mutex
	n   int64
}

func (b *backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{b: b}, nil }

func (b *backend) received() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n++
	fmt.Fprintf(b.out, "mesg=%d\r", b.n)
}

type session struct{ b *backend }

func (s *session) Mail(string, *smtp.MailOptions) error { return nil }
func (s *session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *session) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.b.received()
	return nil
}
func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }
