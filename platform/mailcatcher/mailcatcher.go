// Package mailcatcher is a real SMTP server (github.com/emersion/go-smtp)
// that keeps every message it accepts: in memory for tests, and optionally on
// disk as .eml plus a browsable .html for the dev mode. Tests inject 4xx/5xx
// replies and dropped connections with SetFault.
package mailcatcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Stage is the SMTP command a fault applies to.
type Stage string

// The stages a Fault can fail.
const (
	StageMail Stage = "MAIL"
	StageRcpt Stage = "RCPT"
	StageData Stage = "DATA" // after the final dot, before the reply
)

// ErrDisconnect, returned by a Fault, drops the connection without a reply.
var ErrDisconnect = errors.New("mailcatcher: disconnect")

// Fault decides the outcome of one command: nil accepts it, an
// *smtp.SMTPError is sent as the reply (e.g. Code 451 or 550), ErrDisconnect
// drops the connection. arg is the sender for MAIL and the recipient for RCPT
// and DATA. A Fault may block (to simulate a slow relay).
type Fault func(stage Stage, arg string) error

// Message is one accepted message.
type Message struct {
	From     string
	To       []string
	Data     []byte
	Received time.Time
	// EMLPath is where the message was written, when the catcher has a Dir.
	EMLPath string
	// HTMLPath is the browsable rendering, when the catcher has a Dir.
	HTMLPath string
}

// Options configure a catcher.
type Options struct {
	// Dir, if set, receives <time>-<to>.eml and .html for every message.
	Dir string
	// Logger receives write errors; nil discards them.
	Logger *slog.Logger
	// MaxMessageBytes bounds a message; 0 means 10 MiB.
	MaxMessageBytes int64
}

// Server is a running catcher.
type Server struct {
	smtp *smtp.Server
	lis  net.Listener
	opts Options

	mu       sync.Mutex
	messages []Message
	fault    Fault
	notify   chan struct{} // closed and replaced on every new message
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves until Close.
func Start(addr string, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxMessageBytes == 0 {
		opts.MaxMessageBytes = 10 << 20
	}
	if opts.Dir != "" {
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("mailcatcher: %w", err)
		}
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mailcatcher: listen %s: %w", addr, err)
	}
	s := &Server{lis: lis, opts: opts, notify: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{srv: s, conn: c}, nil
	}))
	srv.Domain = "mailcatcher.localhost"
	srv.MaxMessageBytes = opts.MaxMessageBytes
	srv.MaxRecipients = 100
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = slogAdapter{opts.Logger}
	s.smtp = srv
	go func() { _ = srv.Serve(lis) }()
	return s, nil
}

// Addr is the host:port the catcher listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// HostPort splits Addr into host and port.
func (s *Server) HostPort() (string, int) {
	a := s.lis.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

// Close stops the server and closes open connections.
func (s *Server) Close() error { return s.smtp.Close() }

// SetFault installs f for the following commands; nil removes it.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Messages returns a copy of the accepted messages in arrival order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// WaitFor waits until a message matching match has arrived and returns it.
func (s *Server) WaitFor(ctx context.Context, match func(Message) bool) (Message, error) {
	for {
		s.mu.Lock()
		for _, m := range s.messages {
			if match(m) {
				s.mu.Unlock()
				return m, nil
			}
		}
		notify := s.notify
		s.mu.Unlock()
		select {
		case <-notify:
		case <-ctx.Done():
			return Message{}, fmt.Errorf("mailcatcher: no matching message: %w", ctx.Err())
		}
	}
}

// To matches messages addressed to rcpt.
func To(rcpt string) func(Message) bool {
	return func(m Message) bool {
		for _, t := range m.To {
			if t == rcpt {
				return true
			}
		}
		return false
	}
}

func (s *Server) currentFault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fault
}

func (s *Server) add(m Message) {
	if s.opts.Dir != "" {
		if err := s.write(&m); err != nil {
			s.opts.Logger.Error("mailcatcher: write message", "err", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
	close(s.notify)
	s.notify = make(chan struct{})
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9@._+-]+`)

func (s *Server) write(m *Message) error {
	to := "unknown"
	if len(m.To) > 0 {
		to = unsafeName.ReplaceAllString(m.To[0], "_")
	}
	base := m.Received.UTC().Format("20060102T150405.000000000Z") + "-" + to
	eml := filepath.Join(s.opts.Dir, base+".eml")
	if err := os.WriteFile(eml, m.Data, 0o644); err != nil {
		return err
	}
	m.EMLPath = eml
	page, err := BrowsableHTML(m.Data)
	if err != nil {
		return fmt.Errorf("render %s: %w", eml, err)
	}
	htmlPath := filepath.Join(s.opts.Dir, base+".html")
	if err := os.WriteFile(htmlPath, page, 0o644); err != nil {
		return err
	}
	m.HTMLPath = htmlPath
	return nil
}

type session struct {
	srv  *Server
	conn *smtp.Conn
	from string
	to   []string
}

func (s *session) check(stage Stage, arg string) error {
	f := s.srv.currentFault()
	if f == nil {
		return nil
	}
	err := f(stage, arg)
	if errors.Is(err, ErrDisconnect) {
		_ = s.conn.Conn().Close()
	}
	return err
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if err := s.check(StageMail, from); err != nil {
		return err
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.check(StageRcpt, to); err != nil {
		return err
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	rcpt := ""
	if len(s.to) > 0 {
		rcpt = s.to[0]
	}
	if err := s.check(StageData, rcpt); err != nil {
		return err
	}
	s.srv.add(Message{From: s.from, To: append([]string(nil), s.to...), Data: data, Received: time.Now()})
	return nil
}

func (s *session) Reset() { s.from, s.to = "", nil }

func (s *session) Logout() error { return nil }

type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Printf(format string, v ...any) { a.log.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Println(v ...any)               { a.log.Debug(fmt.Sprint(v...)) }
