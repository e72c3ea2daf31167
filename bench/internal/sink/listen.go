package sink

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/paperroute/paperroute/bench/internal/proc"
)

// waitListening waits until addr accepts a TCP connection.
func waitListening(ctx context.Context, addr string, p *proc.Process) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-p.Exited():
			return fmt.Errorf("sink: %s exited at start: %s", p.Name, p.Log())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sink: %s does not accept connections on %s: %w", p.Name, addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
