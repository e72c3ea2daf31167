package redisstore

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// finishBatchMax bounds the script runs sent in one pipeline.
const finishBatchMax = 64

// finishBatch sends the finish scripts of concurrent workers together: one
// pipeline (one write, one read on each side) for all the runs that were
// asked for while the previous pipeline was in flight. Group commit without
// a goroutine: the caller that finds no pipeline in flight sends the runs
// queued so far, its own included, and hands the turn to a waiting caller
// when it is done. Each run is still one atomic script; the pipeline only
// shares the round trip, so a run's outcome does not depend on the others.
type finishBatch struct {
	mu      sync.Mutex
	busy    bool // a caller is sending a pipeline
	pending []*finishRun
}

type finishRun struct {
	keys []string
	args []any
	err  error
	done chan struct{} // closed when err is set
	turn chan struct{} // closed when this caller is to send the queued runs
}

// run runs finishScript with keys and args, in a pipeline with the runs of
// other callers.
func (b *finishBatch) run(ctx context.Context, rdb redis.UniversalClient, keys []string, args []any) error {
	r := &finishRun{keys: keys, args: args, done: make(chan struct{}), turn: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, r)
	lead := !b.busy
	b.busy = true
	b.mu.Unlock()
	if !lead {
		select {
		case <-r.done:
			return r.err
		case <-r.turn:
		}
	}
	// This caller sends the queued runs (its own is among them: a run
	// leaves the queue only in a pipeline).
	b.mu.Lock()
	n := min(len(b.pending), finishBatchMax)
	batch := b.pending[:n:n]
	b.pending = b.pending[n:]
	b.mu.Unlock()
	sendFinishes(ctx, rdb, batch)
	b.mu.Lock()
	if len(b.pending) > 0 {
		close(b.pending[0].turn)
	} else {
		b.busy = false
	}
	b.mu.Unlock()
	<-r.done
	return r.err
}

// sendFinishes runs the batch in one pipeline, and sends the script body
// for the runs that found the script cache empty (Redis restarted; a run
// that hit NOSCRIPT did not run).
func sendFinishes(ctx context.Context, rdb redis.UniversalClient, batch []*finishRun) {
	cmds := make([]*redis.Cmd, len(batch))
	_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range batch {
			cmds[i] = finishScript.EvalSha(ctx, p, r.keys, r.args...)
		}
		return nil
	})
	var retry []int
	for i, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			retry = append(retry, i)
		}
	}
	if len(retry) > 0 {
		_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range retry {
				cmds[i] = finishScript.Eval(ctx, p, batch[i].keys, batch[i].args...)
			}
			return nil
		})
	}
	for i, r := range batch {
		r.err = cmds[i].Err()
		close(r.done)
	}
}
