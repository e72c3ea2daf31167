package smtpmail

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
)

// primaryRetry is how long after a failover the primary relay is tried
// first again.
const primaryRetry = time.Minute

// Failover is a delivery.Mailer over several relays: it dials the primary,
// and when that fails the next ones in order, sticking with the one that
// answered until the primary is worth trying again.
type Failover struct {
	relays []delivery.Mailer
	now    func() time.Time

	mu      sync.Mutex
	current int       // the relay that answered last
	since   time.Time // when current became a fallback
}

var _ delivery.Mailer = (*Failover)(nil)

// NewFailover returns a Mailer trying primary, then each fallback.
func NewFailover(primary delivery.Mailer, fallbacks ...delivery.Mailer) *Failover {
	return &Failover{relays: append([]delivery.Mailer{primary}, fallbacks...), now: time.Now}
}

// Dial implements delivery.Mailer.
func (f *Failover) Dial(ctx context.Context) (delivery.Conn, error) {
	f.mu.Lock()
	start := f.current
	if start != 0 && f.now().Sub(f.since) >= primaryRetry {
		start = 0
	}
	f.mu.Unlock()
	var errs []error
	for i := range f.relays {
		n := (start + i) % len(f.relays)
		conn, err := f.relays[n].Dial(ctx)
		if err == nil {
			f.mu.Lock()
			if n != f.current {
				f.current, f.since = n, f.now()
			}
			f.mu.Unlock()
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}
