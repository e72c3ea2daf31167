package smtpmail

import (
	"context"
	netmail "net/mail"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/mailcatcher"
	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/mailtemplate"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// TestPoolSharesFewConnections: eight workers send through a pool of two
// connections; every message arrives, never more than two connections are
// open, and Close leaves none open.
func TestPoolSharesFewConnections(t *testing.T) {
	mc, err := mailcatcher.Start("127.0.0.1:0", mailcatcher.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	m, err := New(Config{Addr: mc.Addr(), TLS: TLSNone, Timeout: 5 * time.Second,
		From: &netmail.Address{Address: "digest@paperroute.example"}, MessageIDDomain: "paperroute.example"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPool(m, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const workers, each = 8, 10
	var wg sync.WaitGroup
	var maxOpen atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				c, err := p.Dial(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if n := int64(p.openCount()); n > maxOpen.Load() {
					maxOpen.Store(n)
				}
				to := "w" + strconv.Itoa(w) + "-" + strconv.Itoa(i) + "@example.com"
				err = c.Send(ctx, &delivery.Mail{MessageID: queue.MessageID(to), To: to, Lane: queue.LaneTransactional,
					Rendered: mailtemplate.Rendered{Subject: "s", Text: "t"}})
				if err != nil {
					t.Error(err)
				}
				if c.Reusable() {
					t.Error("a pool lease says reusable; the worker would keep the connection")
				}
				_ = c.Close()
			}
		})
	}
	wg.Wait()
	if got := len(mc.Messages()); got != workers*each {
		t.Errorf("caught %d messages, want %d", got, workers*each)
	}
	if maxOpen.Load() > 2 {
		t.Errorf("%d connections open at once, pool size 2", maxOpen.Load())
	}
	p.Close()
	if p.openCount() != 0 {
		t.Errorf("%d connections still open after Close", p.openCount())
	}
}
