package senderbench

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/bench/internal/redisproc"
)

// MemoryResult is the redis-memory benchmark's JSON result.
type MemoryResult struct {
	Benchmark string  `json:"benchmark"`
	Machine   Machine `json:"machine"`
	Messages  int     `json:"messages"`
	// QueuedBytes is Redis' used_memory growth per queued bulk message
	// (record and stream entry; the content is stored once).
	QueuedBytes float64 `json:"queued_bytes_per_message"`
	// SentBytes is the growth per message still held once every message
	// was sent: the finished record, the sent mark and the acknowledged
	// stream entry, whatever of those the sender keeps.
	SentBytes float64 `json:"sent_bytes_per_message"`
	// Samples is MEMORY USAGE of one key of each kind found after the send
	// (key pattern → bytes).
	Samples map[string]int64 `json:"key_samples_bytes"`
}

// redisMemory queues messages while the relay is down (nothing can be
// sent), measures Redis, then starts the relay, lets everything be sent and
// measures again.
func (e *env) redisMemory(ctx context.Context) error {
	n := e.cfg.MemoryMessages
	ctx, cancel := context.WithTimeout(ctx, phaseTimeout(n))
	defer cancel()
	r, err := e.redis(ctx, "redis-memory")
	if err != nil {
		return err
	}
	defer r.Close()
	port, err := redisproc.FreePort()
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) // nothing listens yet
	sp, err := startSender(ctx, r.URL(), addr, "", e.senderEnv(e.cfg.Conns, e.cfg.Workers))
	if err != nil {
		return err
	}
	defer sp.close()
	contentID, err := sp.putContent(ctx)
	if err != nil {
		return err
	}
	before, err := r.UsedMemory(ctx)
	if err != nil {
		return err
	}
	run := runID()
	if err := sp.enqueueBulk(ctx, run, contentID, 0, n, 500); err != nil {
		return err
	}
	queued, err := r.UsedMemory(ctx)
	if err != nil {
		return err
	}
	s, err := e.sinks.start(ctx, addr)
	if err != nil {
		return err
	}
	defer stopSink(s)
	if _, err := s.WaitFor(ctx, int64(n)); err != nil {
		return err
	}
	for i := range n { // every outcome recorded
		if err := waitSent(ctx, sp, fmt.Sprintf("bench:%s:%d", run, i)); err != nil {
			return err
		}
	}
	sent, err := r.UsedMemory(ctx)
	if err != nil {
		return err
	}
	res := MemoryResult{
		Benchmark: "redis-memory", Machine: machine(), Messages: n,
		QueuedBytes: float64(queued-before) / float64(n),
		SentBytes:   float64(sent-before) / float64(n),
		Samples:     map[string]int64{},
	}
	for _, pattern := range []string{"snd:msg:*", "snd:mark:*", "snd:q:bulk:*"} {
		keys, _, err := r.Client.Scan(ctx, 0, pattern, 1000).Result()
		if err != nil || len(keys) == 0 {
			continue
		}
		if b, err := r.Client.MemoryUsage(ctx, keys[0]).Result(); err == nil {
			res.Samples[pattern] = b
		}
	}
	path, err := writeResult(e.cfg.OutDir, "redis-memory", res)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.cfg.Out, "BENCH redis-memory messages=%d queued=%.0fB/msg sent=%.0fB/msg samples=%v result=%s\n",
		n, res.QueuedBytes, res.SentBytes, res.Samples, path)
	return nil
}

func waitSent(ctx context.Context, sp *senderProc, key string) error {
	for {
		resp, err := sp.client.GetMessage(ctx, &senderv1.GetMessageRequest{IdempotencyKey: key})
		if err != nil {
			return fmt.Errorf("GetMessage %s: %w", key, err)
		}
		if st := resp.GetMessage().GetState(); st == senderv1.MessageState_MESSAGE_STATE_SENT {
			return nil
		} else if st == senderv1.MessageState_MESSAGE_STATE_DEAD {
			return fmt.Errorf("message %s is dead: %s", key, resp.GetMessage().GetLastError())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("message %s not sent: %w", key, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
