package smtpmail

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net"
	netmail "net/mail"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/paperroute/paperroute/platform/mailcatcher"
	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/mailtemplate"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// countingProxy relays TCP between the sender and a catcher, counting the
// connections and the chunks the sender writes: each chunk is one read
// for the relay, so chunks per message are the relay's reads (and, since
// the sender waits for replies between writes, the sender's writes).
type countingProxy struct {
	lis    net.Listener
	target string
	reads  atomic.Int64
	conns  atomic.Int64
}

func startProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{lis: lis, target: target}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = lis.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := lis.Accept()
			if err != nil {
				return
			}
			p.conns.Add(1)
			server, err := net.Dial("tcp", target)
			if err != nil {
				_ = client.Close()
				continue
			}
			wg.Go(func() {
				_, _ = io.Copy(client, server)
				_ = client.Close()
			})
			wg.Go(func() {
				defer func() { _ = server.Close() }()
				buf := make([]byte, 64<<10)
				for {
					n, err := client.Read(buf)
					if n > 0 {
						p.reads.Add(1)
						if _, err := server.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			})
		}
	})
	return p
}

func (p *countingProxy) Addr() string { return p.lis.Addr().String() }

// pipeMailer is a Mailer to addr with VERP on, so that each message's
// envelope sender names it.
func pipeMailer(t *testing.T, addr string, edit func(*Config)) *Mailer {
	t.Helper()
	cfg := Config{Addr: addr, TLS: TLSNone, Timeout: 5 * time.Second, VERP: true,
		From: &netmail.Address{Address: "digest@paperroute.example"}, MessageIDDomain: "paperroute.example"}
	if edit != nil {
		edit(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// bodyMail is a message to to whose text names its recipient.
func bodyMail(to string) *delivery.Mail {
	return &delivery.Mail{MessageID: queue.MessageID(to), To: to, Lane: queue.LaneTransactional,
		Rendered: mailtemplate.Rendered{Subject: "s", Text: "body of " + to}}
}

// sendVia sends m the way a delivery worker does: DialFor with its
// envelope, Send, Close.
func sendVia(ctx context.Context, p *Pool, m *delivery.Mail) error {
	c, err := p.DialFor(ctx, delivery.Envelope{MessageID: m.MessageID, To: m.To})
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	return c.Send(ctx, m)
}

// checkCaught checks that the catcher holds exactly the messages to want,
// each once, with its own envelope sender and body.
func checkCaught(t *testing.T, mc *mailcatcher.Server, want []string) {
	t.Helper()
	seen := map[string]int{}
	for _, got := range mc.Messages() {
		if len(got.To) != 1 {
			t.Errorf("a message to %v", got.To)
			continue
		}
		to := got.To[0]
		seen[to]++
		if from := "digest+" + queue.MessageID(to) + "@paperroute.example"; got.From != from {
			t.Errorf("the message to %s came from %s, want %s", to, got.From, from)
		}
		parsed, err := mailcatcher.Parse(got.Data)
		if err != nil {
			t.Errorf("the message to %s: %v", to, err)
			continue
		}
		if !strings.Contains(parsed.Text, "body of "+to) {
			t.Errorf("the message to %s has the text %q", to, parsed.Text)
		}
	}
	for _, to := range want {
		if seen[to] != 1 {
			t.Errorf("%s got %d copies, want 1", to, seen[to])
		}
		delete(seen, to)
	}
	for to, n := range seen {
		t.Errorf("%d unexpected messages to %s", n, to)
	}
}

// waitWaiting waits until n workers wait for a connection of p.
func waitWaiting(t *testing.T, p *Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.mu.Lock()
		got := len(p.waiters)
		p.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d workers wait for a connection, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPipelinedPoolDeliversEachMessageOnce: workers share one or two
// connections; every message arrives once with its own envelope and body
// (no crossed envelopes), mail to a non-ASCII address (go-mail, never
// pipelined) included, and with ASCII mail the relay reads one chunk per
// message in steady state instead of two.
func TestPipelinedPoolDeliversEachMessageOnce(t *testing.T) {
	for _, tt := range []struct {
		name              string
		size, workers     int
		nonASCII, noPipes bool
		dkim              bool
		maxPerConn        int
		maxReadsPerMsg    float64
	}{
		// Without pipelining the relay reads 2 chunks per message; the
		// bound leaves room for the start, and for the end when fewer
		// workers are left than it takes to have one always waiting.
		{name: "one connection", size: 1, workers: 4, maxReadsPerMsg: 1.25},
		{name: "two connections", size: 2, workers: 8, maxReadsPerMsg: 1.25},
		{name: "with non-ASCII recipients", size: 2, workers: 4, nonASCII: true},
		{name: "relay without PIPELINING", size: 1, workers: 3, noPipes: true},
		{name: "DKIM signing", size: 1, workers: 4, dkim: true, maxReadsPerMsg: 1.25},
		{name: "three messages per connection", size: 1, workers: 3, maxPerConn: 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mc, err := mailcatcher.Start("127.0.0.1:0", mailcatcher.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer mc.Close()
			var mails atomic.Int64
			mc.SetFault(func(stage mailcatcher.Stage, _ string) error {
				if stage == mailcatcher.StageMail {
					mails.Add(1)
				}
				return nil
			})
			proxy := startProxy(t, mc.Addr())
			pub, key, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			var m delivery.Mailer = pipeMailer(t, proxy.Addr(), func(c *Config) {
				if tt.dkim {
					c.DKIM = &DKIM{Domain: "paperroute.example", Selector: "pr1", Signer: key}
				}
			})
			if tt.noPipes {
				m = noPipelining{m}
			}
			maxPerConn := 1000
			if tt.maxPerConn > 0 {
				maxPerConn = tt.maxPerConn
			}
			p, err := NewPool(m, tt.size, maxPerConn)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			const each = 30
			var wg sync.WaitGroup
			var want []string
			for w := range tt.workers {
				var mine []*delivery.Mail
				for i := range each {
					to := "w" + strconv.Itoa(w) + "-" + strconv.Itoa(i) + "@example.com"
					if tt.nonASCII && i%3 == 0 {
						to = "jörg" + strconv.Itoa(w) + "-" + strconv.Itoa(i) + "@example.com"
					}
					want = append(want, to)
					mine = append(mine, bodyMail(to))
				}
				wg.Go(func() {
					for _, m := range mine {
						if err := sendVia(ctx, p, m); err != nil {
							t.Errorf("send to %s: %v", m.To, err)
						}
					}
				})
			}
			wg.Wait()
			p.Close()
			checkCaught(t, mc, want)
			if tt.dkim {
				record := "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
				for _, got := range mc.Messages() {
					vs, err := dkim.VerifyWithOptions(bytes.NewReader(got.Data), &dkim.VerifyOptions{
						LookupTXT: func(string) ([]string, error) { return []string{record}, nil }})
					if err != nil || len(vs) != 1 || vs[0].Err != nil {
						t.Errorf("the message to %v does not verify: %v, %v", got.To, vs, err)
					}
				}
			}
			least := int64((len(want) + maxPerConn - 1) / maxPerConn)
			if n, most := proxy.conns.Load(), max(int64(tt.size), least); n > most || n < least {
				t.Errorf("%d connections, want %d to %d (at most %d messages each)", n, least, most, maxPerConn)
			}
			// No envelope was written ahead in vain (e.g. behind a
			// connection's last message).
			if n := mails.Load(); n != int64(len(want)) {
				t.Errorf("the relay read %d MAIL commands for %d messages", n, len(want))
			}
			perMsg := float64(proxy.reads.Load()) / float64(len(want))
			t.Logf("%d relay reads for %d messages (%.2f per message)", proxy.reads.Load(), len(want), perMsg)
			if tt.maxReadsPerMsg > 0 && perMsg > tt.maxReadsPerMsg {
				t.Errorf("%.2f relay reads per message, want at most %.2f (one round trip per message)", perMsg, tt.maxReadsPerMsg)
			}
			if tt.noPipes && perMsg < 4 {
				t.Errorf("%.2f relay reads per message without PIPELINING, want 4 (a command a write)", perMsg)
			}
		})
	}
}

// noPipelining dials connections that do as if the relay had not
// announced PIPELINING.
type noPipelining struct{ m delivery.Mailer }

func (n noPipelining) Dial(ctx context.Context) (delivery.Conn, error) {
	c, err := n.m.Dial(ctx)
	if err != nil {
		return nil, err
	}
	c.(*conn).pipelining = false
	return c, nil
}
