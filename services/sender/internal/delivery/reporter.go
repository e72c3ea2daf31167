package delivery

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// ErrReportRefused is wrapped by a FailureReporter error when the
// subscriber service refused a report for good (e.g. InvalidArgument): it
// is dropped instead of retried forever.
var ErrReportRefused = errors.New("delivery: failure report refused")

// Report is one delivery failure (a 5xx) waiting to be told to the
// subscriber service.
type Report struct {
	// ID is the report's id in the outbox.
	ID        string
	Recipient string
	Detail    string
}

// Outbox holds the reports durably until the subscriber service has
// acknowledged them. MarkDead writes them in the same step as the DEAD
// record, so no bounce is lost between the two.
type Outbox interface {
	// PendingReports returns up to max reports of a partition, oldest first.
	PendingReports(ctx context.Context, partition, max int) ([]Report, error)
	// DeleteReports removes acknowledged reports.
	DeleteReports(ctx context.Context, partition int, ids []string) error
}

// FailureReporter tells the subscriber service about a hard bounce
// (RecordDeliveryFailure, idempotent). Implemented by internal/peers.
type FailureReporter interface {
	RecordDeliveryFailure(ctx context.Context, recipient, detail string) error
}

// Reporter empties the outbox into the subscriber service, retrying with
// backoff while it is unavailable: a subscriber outage delays reports, it
// loses none. Several replicas may report the same failure; the RPC is
// idempotent.
type Reporter struct {
	outbox     Outbox
	peer       FailureReporter
	partitions int
	log        *slog.Logger
	every      time.Duration
}

// NewReporter returns a Reporter over the outbox of every partition.
func NewReporter(outbox Outbox, peer FailureReporter, partitions int, log *slog.Logger) *Reporter {
	return &Reporter{outbox: outbox, peer: peer, partitions: max(1, partitions), log: log, every: time.Second}
}

// Run reports until ctx is done; it returns nil.
func (r *Reporter) Run(ctx context.Context) error {
	bo := backoff{min: r.every, max: time.Minute}
	failing := false
	for {
		err := r.reportAll(ctx)
		wait := r.every
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			if !failing {
				r.log.WarnContext(ctx, "sender: reporting delivery failures to the subscriber service failed; retrying", "err", err)
				failing = true
			}
			wait = bo.next()
		default:
			if failing {
				r.log.InfoContext(ctx, "sender: reporting delivery failures works again")
				failing = false
			}
			bo.reset()
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// reportAll sends every pending report once; it stops at the first
// failure (the subscriber service is probably down).
func (r *Reporter) reportAll(ctx context.Context) error {
	for p := range r.partitions {
		for {
			reports, err := r.outbox.PendingReports(ctx, p, 100)
			if err != nil || len(reports) == 0 {
				return err
			}
			var done []string
			var failed error
			for _, rep := range reports {
				err := r.peer.RecordDeliveryFailure(ctx, rep.Recipient, rep.Detail)
				switch {
				case err == nil:
					done = append(done, rep.ID)
				case errors.Is(err, ErrReportRefused):
					r.log.ErrorContext(ctx, "sender: the subscriber service refused a delivery failure report; dropping it", "recipient", rep.Recipient, "err", err)
					done = append(done, rep.ID)
				default:
					failed = err
				}
				if failed != nil {
					break
				}
			}
			if len(done) > 0 {
				if err := r.outbox.DeleteReports(ctx, p, done); err != nil {
					return err
				}
			}
			if failed != nil {
				return failed
			}
			if len(reports) < 100 {
				break
			}
		}
	}
	return nil
}
