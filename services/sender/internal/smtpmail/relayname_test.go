package smtpmail_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/smtpmail"
)

// A connection tells which relay it reached (the pacing of that relay is
// shared by the replicas), also after a failover and through the pool.
func TestConnectionsNameTheirRelay(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := lis.Addr().String()
	lis.Close() // the primary is down
	backup := catcher(t)
	failover := smtpmail.NewFailover(mailer(t, down, nil), mailer(t, backup.Addr(), nil))
	pool, err := smtpmail.NewPool(failover, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, m := range map[string]delivery.Mailer{"failover": failover, "pool over failover": pool} {
		conn, err := m.Dial(ctx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r, ok := conn.(delivery.Relayed)
		switch {
		case !ok:
			t.Errorf("%s: %T does not name its relay", name, conn)
		case r.Relay() != backup.Addr():
			t.Errorf("%s: relay %q, want the fallback %q", name, r.Relay(), backup.Addr())
		}
		_ = conn.Close()
	}
}
