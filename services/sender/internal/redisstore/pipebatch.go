package redisstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// pipeBatchMax bounds the calls sent in one pipeline.
const pipeBatchMax = 64

// pipeBatch sends the script calls of concurrent workers together: one
// pipeline (one write, one read on each side) for all the calls that were
// asked for while the previous pipeline was in flight, and one script run
// for all the calls of the same script and partition among them. Group
// commit without a goroutine: the caller that finds no pipeline in flight
// sends the calls queued so far, its own included, and hands the turn to a
// waiting caller when it is done. A batched script serves each of its calls
// in turn, as if they were run one after the other, in one atomic step
// (all keys in the partition's slot); each call gets its own result. The
// lease and finish scripts of the delivery path go through it: they cost
// Redis one script run per group instead of one per message.
type pipeBatch struct {
	mu      sync.Mutex
	busy    bool // a caller is sending a pipeline
	pending []*callGroup
}

// callGroup is the calls of one caller, sent in the same pipeline (in
// order: on a single Redis they run one after the other).
type callGroup struct {
	calls []*scriptCall
	done  chan struct{}
	turn  chan struct{} // closed when this caller is to send the queued calls
}

// scriptCall is one call of a batched script. The script's KEYS are the
// shared keys followed by every call's keys, its ARGV the shared arguments
// followed by every call's arguments, and it returns a flat array with as
// many elements for each call, in order, or the number of calls.
type scriptCall struct {
	script *redis.Script
	// slot groups calls: calls of one script with the same slot share a run,
	// with the first one's shared keys and arguments (the same for all).
	slot       string
	sharedKeys []string
	sharedArgs []any
	keys       []string
	args       []any
	// after, if set, adds commands to the pipeline after the script's run
	// (on a single Redis they run after it); they are sent again when the
	// script is sent again.
	after func(redis.Pipeliner)

	res []any // the call's elements of the script's answer
	err error // the script run's error
}

// call runs c in a pipeline shared with other callers and returns its
// result when the pipeline was sent.
func (b *pipeBatch) call(ctx context.Context, rdb redis.UniversalClient, c *scriptCall) ([]any, error) {
	b.callAll(ctx, rdb, c)
	return c.res, c.err
}

// callAll runs calls in one pipeline shared with other callers (each
// call's result is in its res and err) and returns when it was sent.
//
// A call whose ctx is done when it is asked fails at once. A pipeline,
// once sent, is not cut off by the end of any one caller's context — it
// carries other callers' calls, and a finish that reached Redis should be
// answered — but bounded by the client's read and write timeouts.
func (b *pipeBatch) callAll(ctx context.Context, rdb redis.UniversalClient, calls ...*scriptCall) {
	if err := ctx.Err(); err != nil {
		for _, c := range calls {
			c.res, c.err = nil, err
		}
		return
	}
	g := &callGroup{calls: calls, done: make(chan struct{}), turn: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, g)
	lead := !b.busy
	b.busy = true
	b.mu.Unlock()
	if !lead {
		select {
		case <-g.done:
			return
		case <-g.turn:
		}
	}
	// This caller sends the queued groups (its own is among them: a group
	// leaves the queue only in a pipeline, and the turn goes to the
	// first). A group is never split, so the first always goes.
	b.mu.Lock()
	n, size := 0, 0
	for n < len(b.pending) && (n == 0 || size+len(b.pending[n].calls) <= pipeBatchMax) {
		size += len(b.pending[n].calls)
		n++
	}
	groups := b.pending[:n:n]
	b.pending = b.pending[n:]
	b.mu.Unlock()
	batch := make([]*scriptCall, 0, size)
	for _, o := range groups {
		batch = append(batch, o.calls...)
	}
	sendBatch(context.WithoutCancel(ctx), rdb, batch)
	for _, o := range groups {
		if o != g {
			close(o.done)
		}
	}
	b.mu.Lock()
	if len(b.pending) > 0 {
		close(b.pending[0].turn)
	} else {
		b.busy = false
	}
	b.mu.Unlock()
}

// scriptRun is the calls that share one run of a script.
type scriptRun struct {
	calls []*scriptCall
	cmd   *redis.Cmd
}

// sendBatch runs the calls, one script run per script and slot, in one
// pipeline; runs that found the script cache empty (Redis restarted: they
// did not run) are sent again with the script's body.
func sendBatch(ctx context.Context, rdb redis.UniversalClient, batch []*scriptCall) {
	var runs []*scriptRun
	type runKey struct {
		script *redis.Script
		slot   string
	}
	index := map[runKey]*scriptRun{}
	for _, c := range batch {
		k := runKey{c.script, c.slot}
		r := index[k]
		if r == nil {
			r = &scriptRun{}
			index[k] = r
			runs = append(runs, r)
		}
		r.calls = append(r.calls, c)
	}
	sendRuns(ctx, rdb, runs, false)
	var again []*scriptRun
	for _, r := range runs {
		if redis.HasErrorPrefix(r.cmd.Err(), "NOSCRIPT") {
			again = append(again, r)
		}
	}
	if len(again) > 0 {
		sendRuns(ctx, rdb, again, true)
	}
}

func sendRuns(ctx context.Context, rdb redis.UniversalClient, runs []*scriptRun, body bool) {
	_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, r := range runs {
			first := r.calls[0]
			keys := append([]string(nil), first.sharedKeys...)
			args := append([]any(nil), first.sharedArgs...)
			for _, c := range r.calls {
				keys = append(keys, c.keys...)
				args = append(args, c.args...)
			}
			if body {
				r.cmd = first.script.Eval(ctx, p, keys, args...)
			} else {
				r.cmd = first.script.EvalSha(ctx, p, keys, args...)
			}
			for _, c := range r.calls {
				if c.after != nil {
					c.after(p)
				}
			}
		}
		return nil
	})
	for _, r := range runs {
		results, err := split(r.cmd, len(r.calls))
		for i, c := range r.calls {
			c.res, c.err = nil, err
			if err == nil && results != nil {
				c.res = results[i]
			}
		}
	}
}

// split divides a batched script's answer among its n calls: a flat array
// of the same number of elements per call, or the count n (no results).
func split(cmd *redis.Cmd, n int) ([][]any, error) {
	v, err := cmd.Result()
	if err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case int64:
		if v == int64(n) {
			return nil, nil
		}
	case []any:
		if len(v) > 0 && len(v)%n == 0 {
			k := len(v) / n
			out := make([][]any, n)
			for i := range out {
				out[i] = v[i*k : (i+1)*k : (i+1)*k]
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("redisstore: a batched script's answer %v does not match its %d calls", v, n)
}
