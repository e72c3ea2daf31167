package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// Jobs is the subscription.Jobs queue on a Redis stream (key sub:jobs,
// consumer group "workers"), worked by Run in every replica. A job is
// acknowledged and deleted once its handler succeeds; a failed job stays
// pending and is claimed again after RetryAfter, so no job is lost when a
// replica dies or the sender is down.
type Jobs struct {
	rdb      redis.UniversalClient
	consumer string
	// RetryAfter is how long a failed or abandoned job waits before it is
	// tried again.
	RetryAfter time.Duration

	tracer trace.Tracer // nil: jobs are not traced (see WithTracerProvider)
}

var _ subscription.Jobs = (*Jobs)(nil)

const (
	jobsKey   = "sub:jobs"
	jobsGroup = "workers"
	jobField  = "job"
)

// NewJobs returns the queue; consumer names this replica (unique per
// process, e.g. host name and pid).
func NewJobs(rdb redis.UniversalClient, consumer string) *Jobs {
	return &Jobs{rdb: rdb, consumer: consumer, RetryAfter: 30 * time.Second}
}

// Push implements subscription.Jobs. The trace context of ctx, if any,
// travels with the job (field tp).
func (q *Jobs) Push(ctx context.Context, j subscription.Job) error {
	b, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("redisstore: encode job: %w", err)
	}
	values := []any{jobField, b}
	if tp := traceParent(ctx); tp != "" {
		values = append(values, traceField, tp)
	}
	if err := q.rdb.XAdd(ctx, &redis.XAddArgs{Stream: jobsKey, Values: values}).Err(); err != nil {
		return fmt.Errorf("redisstore: push job: %w", err)
	}
	return nil
}

func (q *Jobs) ensureGroup(ctx context.Context) error {
	err := q.rdb.XGroupCreateMkStream(ctx, jobsKey, jobsGroup, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("redisstore: create job group: %w", err)
	}
	return nil
}

// Handler does one job.
type Handler func(ctx context.Context, j subscription.Job) error

// Run works the queue until ctx ends, logging failed jobs (which are
// retried).
func (q *Jobs) Run(ctx context.Context, log *slog.Logger, handle Handler) error {
	if err := q.ensureGroup(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started: a clean shutdown
		}
		return err
	}
	for ctx.Err() == nil {
		if _, err := q.work(ctx, log, handle, time.Second); err != nil && ctx.Err() == nil {
			log.ErrorContext(ctx, "job queue", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// RunOnce does the jobs that are waiting now (new ones, and failed ones
// whose retry time has come), without blocking, and returns how many
// succeeded. Tests use it to work the queue at a point of their choosing.
func (q *Jobs) RunOnce(ctx context.Context, log *slog.Logger, handle Handler) (int, error) {
	if err := q.ensureGroup(ctx); err != nil {
		return 0, err
	}
	total := 0
	for {
		n, err := q.work(ctx, log, handle, -1)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// handle runs one job, in the trace of the call that pushed it.
func (q *Jobs) handle(ctx context.Context, handle Handler, m redis.XMessage, j subscription.Job) error {
	tp, _ := m.Values[traceField].(string)
	ctx, end := q.startJob(ctx, tp, j)
	err := handle(ctx, j)
	end(err)
	return err
}

// work claims stale pending jobs, then reads new ones (block < 0: don't
// wait), and runs them.
func (q *Jobs) work(ctx context.Context, log *slog.Logger, handle Handler, block time.Duration) (int, error) {
	claimed, _, err := q.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: jobsKey, Group: jobsGroup, Consumer: q.consumer, MinIdle: q.RetryAfter, Start: "0", Count: 64,
	}).Result()
	if err != nil {
		return 0, fmt.Errorf("redisstore: claim jobs: %w", err)
	}
	msgs := claimed
	args := &redis.XReadGroupArgs{Group: jobsGroup, Consumer: q.consumer, Streams: []string{jobsKey, ">"}, Count: 64, Block: block}
	if block < 0 || len(claimed) > 0 {
		args.Block = -1 // do not wait when there is work already
	}
	streams, err := q.rdb.XReadGroup(ctx, args).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("redisstore: read jobs: %w", err)
	}
	for _, s := range streams {
		msgs = append(msgs, s.Messages...)
	}
	done := 0
	for _, m := range msgs {
		var j subscription.Job
		raw, _ := m.Values[jobField].(string)
		if err := json.Unmarshal([]byte(raw), &j); err != nil {
			log.ErrorContext(ctx, "dropping undecodable job", "id", m.ID, "err", err)
		} else if err := q.handle(ctx, handle, m, j); err != nil {
			log.WarnContext(ctx, "job failed; will retry", "id", m.ID, "kind", j.Kind, "err", err)
			continue
		}
		if _, err := q.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.XAck(ctx, jobsKey, jobsGroup, m.ID)
			p.XDel(ctx, jobsKey, m.ID)
			return nil
		}); err != nil {
			return done, fmt.Errorf("redisstore: ack job %s: %w", m.ID, err)
		}
		done++
	}
	return done, nil
}
