package redisstore

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// pipeBatchMax bounds the runs sent in one pipeline.
const pipeBatchMax = 64

// pipeBatch sends the Redis commands of concurrent workers together: one
// pipeline (one write, one read on each side) for all the runs that were
// asked for while the previous pipeline was in flight. Group commit without
// a goroutine: the caller that finds no pipeline in flight sends the runs
// queued so far, its own included, and hands the turn to a waiting caller
// when it is done. Each command stays what it was (a script is still one
// atomic step); the pipeline only shares the round trip, so a run's outcome
// does not depend on the others'. The lease and finish scripts of the
// delivery path go through it.
type pipeBatch struct {
	mu      sync.Mutex
	busy    bool // a caller is sending a pipeline
	pending []*pipeRun
}

type pipeRun struct {
	queue func(redis.Pipeliner) // adds the run's commands
	done  chan struct{}         // closed when the commands were sent
	turn  chan struct{}         // closed when this caller is to send the queued runs
}

// run adds the commands of queue to a pipeline shared with other callers
// and returns when it was sent; each command carries its own result.
func (b *pipeBatch) run(ctx context.Context, rdb redis.UniversalClient, queue func(redis.Pipeliner)) {
	r := &pipeRun{queue: queue, done: make(chan struct{}), turn: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, r)
	lead := !b.busy
	b.busy = true
	b.mu.Unlock()
	if !lead {
		select {
		case <-r.done:
			return
		case <-r.turn:
		}
	}
	// This caller sends the queued runs (its own is among them: a run
	// leaves the queue only in a pipeline, and the turn goes to the first).
	b.mu.Lock()
	n := min(len(b.pending), pipeBatchMax)
	batch := b.pending[:n:n]
	b.pending = b.pending[n:]
	b.mu.Unlock()
	_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, r := range batch {
			r.queue(p)
		}
		return nil
	})
	for _, r := range batch {
		close(r.done)
	}
	b.mu.Lock()
	if len(b.pending) > 0 {
		close(b.pending[0].turn)
	} else {
		b.busy = false
	}
	b.mu.Unlock()
}

// evalBatched runs script in a shared pipeline; when the script cache was
// empty (Redis restarted: the run hit NOSCRIPT and did not run) it sends
// the body. more adds commands to the same pipeline (nil: none); they are
// sent again with the body.
func (b *pipeBatch) evalBatched(ctx context.Context, rdb redis.UniversalClient, script *redis.Script, keys []string, args []any, more func(redis.Pipeliner)) *redis.Cmd {
	var cmd *redis.Cmd
	eval := script.EvalSha
	for try := 0; ; try++ {
		b.run(ctx, rdb, func(p redis.Pipeliner) {
			cmd = eval(ctx, p, keys, args...)
			if more != nil {
				more(p)
			}
		})
		if try > 0 || !redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			return cmd
		}
		eval = script.Eval
	}
}
