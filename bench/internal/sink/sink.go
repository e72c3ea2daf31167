// Package sink runs the SMTP server the benchmarks deliver to and counts
// what it received: postfix's smtp-sink (unpacked from the Debian package,
// no mail system configured), or a go-smtp server in a process of its own
// when smtp-sink cannot be had. Both accept every message and throw it away,
// and both print a running count ("mesg=N") the benchmark reads.
package sink

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/paperroute/paperroute/bench/internal/proc"
)

// Kind names a sink implementation.
type Kind string

// The sinks.
const (
	// Postfix is postfix's smtp-sink.
	Postfix Kind = "smtp-sink"
	// GoSMTP is a github.com/emersion/go-smtp server in its own process.
	GoSMTP Kind = "go-smtp"
)

// Postfix's smtp-sink inside the unpacked package.
const (
	sinkBin = "usr/sbin/smtp-sink"
	libDir  = "usr/lib/postfix"
)

// InstallPostfix makes sure smtp-sink is unpacked under dir, fetching the
// Debian postfix package with apt-get download and unpacking it with
// dpkg-deb -x (nothing is installed or configured on the machine). It
// returns the directory to pass to Start.
func InstallPostfix(ctx context.Context, dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, sinkBin)); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("sink: %w", err)
	}
	dl := exec.CommandContext(ctx, "apt-get", "download", "postfix")
	dl.Dir = dir
	if out, err := dl.CombinedOutput(); err != nil {
		return "", fmt.Errorf("sink: apt-get download postfix: %w: %s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "postfix_*.deb"))
	if len(debs) == 0 {
		return "", errors.New("sink: apt-get download postfix left no .deb")
	}
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[0], dir).CombinedOutput(); err != nil {
		return "", fmt.Errorf("sink: dpkg-deb -x: %w: %s", err, out)
	}
	for _, d := range debs {
		_ = os.Remove(d)
	}
	if _, err := os.Stat(filepath.Join(dir, sinkBin)); err != nil {
		return "", fmt.Errorf("sink: the postfix package has no smtp-sink: %w", err)
	}
	return dir, nil
}

// PostfixCommand is the smtp-sink command line listening on addr (host:port).
func PostfixCommand(dir, addr string) *exec.Cmd {
	args := []string{"-c", "-h", "sink.bench.invalid", "-m", "1024"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody") // smtp-sink refuses to run as root
	}
	args = append(args, addr, "1024")
	cmd := exec.Command(filepath.Join(dir, sinkBin), args...)
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+filepath.Join(dir, libDir))
	return cmd
}

// Sink is a running sink process.
type Sink struct {
	*proc.Process
	Kind Kind
	Addr string

	mu      sync.Mutex
	count   int64
	waiters []waiter
}

type waiter struct {
	n  int64
	ch chan time.Time
}

// Start runs cmd (PostfixCommand, or a go-smtp sink process) and follows
// its count. It returns once the sink accepts connections on addr.
func Start(ctx context.Context, kind Kind, addr string, cmd *exec.Cmd) (*Sink, error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	p, err := proc.Start(ctx, string(kind), cmd)
	if err != nil {
		return nil, err
	}
	s := &Sink{Process: p, Kind: kind, Addr: addr}
	go s.follow(out)
	if err := waitListening(ctx, addr, p); err != nil {
		_ = p.Stop(time.Second)
		return nil, err
	}
	return s, nil
}

// follow reads "mesg=N" counters, separated by CR or LF.
func (s *Sink) follow(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Split(splitCRLF)
	for sc.Scan() {
		line := sc.Bytes()
		i := bytes.Index(line, []byte("mesg="))
		if i < 0 {
			continue
		}
		n, err := strconv.ParseInt(string(line[i+5:]), 10, 64)
		if err != nil {
			continue
		}
		s.set(n, time.Now())
	}
}

func (s *Sink) set(n int64, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= s.count {
		return
	}
	s.count = n
	kept := s.waiters[:0]
	for _, w := range s.waiters {
		if n >= w.n {
			w.ch <- at
			continue
		}
		kept = append(kept, w)
	}
	s.waiters = kept
}

// Count is how many messages the sink has received.
func (s *Sink) Count() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// WaitFor waits until the sink has received n messages and returns when
// the count reached n (as seen when the counter line was read).
func (s *Sink) WaitFor(ctx context.Context, n int64) (time.Time, error) {
	ch := make(chan time.Time, 1)
	s.mu.Lock()
	if s.count >= n {
		s.mu.Unlock()
		return time.Now(), nil
	}
	s.waiters = append(s.waiters, waiter{n: n, ch: ch})
	s.mu.Unlock()
	select {
	case at := <-ch:
		return at, nil
	case <-s.Exited():
		return time.Time{}, fmt.Errorf("sink: %s exited after %d of %d messages: %s", s.Kind, s.Count(), n, s.Log())
	case <-ctx.Done():
		return time.Time{}, fmt.Errorf("sink: %d of %d messages received: %w", s.Count(), n, ctx.Err())
	}
}

func splitCRLF(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
