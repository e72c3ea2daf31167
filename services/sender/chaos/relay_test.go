package chaos_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// relay is a real SMTP server (go-smtp on loopback) that stores every
// message it accepts and counts them per recipient. Its fault decides each
// command's outcome; storeThenStall makes it store a message and then not
// answer the final dot.
type relay struct {
	srv  *smtp.Server
	addr string

	mu    sync.Mutex
	count map[string]int
	// stored holds when each recipient's messages were stored, in order.
	stored map[string][]time.Time
	total  int
	fault  func(stage, rcpt string) error
	// stall, when it returns a duration for a recipient, stores the message
	// and then waits that long before answering the final dot.
	stall func(rcpt string) time.Duration
}

// errDrop drops the connection without a reply.
var errDrop = errors.New("relay: drop")

func startRelay(t *testing.T) *relay {
	t.Helper()
	r := &relay{count: map[string]int{}, stored: map[string][]time.Time{}}
	r.srv = smtp.NewServer(backend{r})
	r.srv.Domain = "relay.test"
	r.srv.AllowInsecureAuth = true
	r.srv.ReadTimeout = time.Minute
	r.srv.WriteTimeout = time.Minute
	r.srv.ErrorLog = quiet{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = lis.Addr().String()
	go func() { _ = r.srv.Serve(lis) }()
	t.Cleanup(func() { _ = r.srv.Close() })
	return r
}

func (r *relay) setFault(f func(stage, rcpt string) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fault = f
}

func (r *relay) setStall(f func(rcpt string) time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stall = f
}

// received returns how many messages each recipient got.
func (r *relay) received() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.count))
	for k, v := range r.count {
		out[k] = v
	}
	return out
}

// storedAt returns when each recipient's messages were stored, for the
// recipients that got more than one.
func (r *relay) storedAt() map[string][]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]time.Time{}
	for k, v := range r.stored {
		if len(v) > 1 {
			out[k] = append([]time.Time(nil), v...)
		}
	}
	return out
}

// distinct is the number of recipients that got at least one message.
func (r *relay) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.count)
}

type backend struct{ r *relay }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{r: b.r, conn: c}, nil
}

type session struct {
	r    *relay
	conn *smtp.Conn
	to   string
}

func (s *session) check(stage, rcpt string) error {
	s.r.mu.Lock()
	f := s.r.fault
	s.r.mu.Unlock()
	if f == nil {
		return nil
	}
	err := f(stage, rcpt)
	if errors.Is(err, errDrop) {
		_ = s.conn.Conn().Close()
	}
	return err
}

func (s *session) Mail(string, *smtp.MailOptions) error { return s.check("MAIL", "") }

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.check("RCPT", to); err != nil {
		return err
	}
	s.to = strings.ToLower(to)
	return nil
}

func (s *session) Data(rd io.Reader) error {
	if _, err := io.Copy(io.Discard, rd); err != nil {
		return err
	}
	if err := s.check("DATA", s.to); err != nil {
		return err
	}
	s.r.mu.Lock()
	s.r.count[s.to]++
	s.r.stored[s.to] = append(s.r.stored[s.to], time.Now())
	s.r.total++
	stall := s.r.stall
	s.r.mu.Unlock()
	if stall != nil {
		if d := stall(s.to); d > 0 {
			time.Sleep(d) // stored, and then the relay does not answer in time
		}
	}
	return nil
}

func (s *session) Reset() { s.to = "" }

func (s *session) Logout() error { return nil }

// quiet drops go-smtp's log lines (connections reset by killed senders).
type quiet struct{}

func (quiet) Printf(string, ...any) {}
func (quiet) Println(...any)        {}
