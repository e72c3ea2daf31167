package senderd_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/platform/grpcclient"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/mailcatcher"
	"github.com/paperroute/paperroute/platform/redistest"
	"github.com/paperroute/paperroute/services/sender/senderd"
)

const (
	adminToken   = "admin-token-for-tests"
	serviceToken = "service-token-for-tests"
	retryAfter   = 200 * time.Millisecond
	// waitLimit bounds every wait-until in these tests.
	waitLimit = 15 * time.Second
)

// harness runs the real service (senderd.Run) against a private
// redis-server and an in-process SMTP server, and talks to it through the
// generated gRPC client over loopback TCP.
type harness struct {
	t     testing.TB
	redis *redistest.Server
	rdb   redis.UniversalClient
	mail  *mailcatcher.Server
	env   map[string]string
	logs  *logging.Buffer

	client   senderv1.SenderServiceClient // service token
	admin    senderv1.SenderServiceClient // operator token
	httpAddr string
	grpcAddr string
	// tp, when set before start, traces the service (Deps.TracerProvider).
	tp     trace.TracerProvider
	cancel context.CancelFunc
	done   chan error
}

// newHarness starts Redis and the mail catcher; start runs the service.
func newHarness(t testing.TB, redisOpts ...redistest.Option) *harness {
	t.Helper()
	r := redistest.Start(t, redisOpts...)
	mc, err := mailcatcher.Start("127.0.0.1:0", mailcatcher.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Close() })
	h := &harness{
		t: t, redis: r, rdb: r.Client(), mail: mc, logs: &logging.Buffer{},
		env: map[string]string{
			"REDIS_URL":                r.URL(),
			"SENDER_SMTP_ADDR":         mc.Addr(),
			"PAPERROUTE_ADMIN_TOKEN":   adminToken,
			"PAPERROUTE_SERVICE_TOKEN": serviceToken,
			"SENDER_RETRY_AFTER":       retryAfter.String(),
			"SENDER_PARTITIONS":        "2",
			"SENDER_WORKERS":           "2",
			"SENDER_SMTP_TIMEOUT":      "2s",
			"SENDER_LEASE":             "3s",
			"SENDER_SMTP_TLS":          "none",
			"SENDER_RETRY_MAX_DELAY":   (2 * retryAfter).String(),
			"SHUTDOWN_GRACE":           "2s",
			"SENDER_CONSUMER":          "test-" + strings.ReplaceAll(t.Name(), "/", "-"),
		},
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("service logs:\n%s", h.logs.String())
		}
	})
	return h
}

// start runs the service with the harness env plus overrides.
func (h *harness) start(overrides map[string]string) {
	h.t.Helper()
	env := map[string]string{}
	for k, v := range h.env {
		env[k] = v
	}
	for k, v := range overrides {
		env[k] = v
	}
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	httpLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	h.httpAddr, h.grpcAddr = httpLis.Addr().String(), grpcLis.Addr().String()
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() {
		h.done <- senderd.Run(ctx, envload.MapGetenv(env, nil), senderd.Deps{
			Logger: log, GRPCListener: grpcLis, HTTPListener: httpLis, TracerProvider: h.tp,
		})
	}()
	h.client = newClient(h.t, grpcLis.Addr().String(), serviceToken)
	h.admin = newClient(h.t, grpcLis.Addr().String(), adminToken)
	h.t.Cleanup(func() {
		if h.cancel != nil {
			h.stop()
		}
	})
}

// stop cancels Run and returns its result.
func (h *harness) stop() error {
	h.t.Helper()
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		return err
	case <-time.After(waitLimit):
		h.t.Fatal("Run did not return after its context was cancelled")
		return nil
	}
}

// startReplica runs another sender process on the same Redis and relay,
// with its own consumer name, the harness env and overrides. The returned
// func stops it and returns Run's result; it is also stopped at cleanup.
func (h *harness) startReplica(consumer string, overrides map[string]string) (stop func() error) {
	h.t.Helper()
	env := map[string]string{
		"SENDER_GRPC_ADDR": "127.0.0.1:0",
		"SENDER_HTTP_ADDR": "127.0.0.1:0",
	}
	for k, v := range h.env {
		env[k] = v
	}
	for k, v := range overrides {
		env[k] = v
	}
	env["SENDER_CONSUMER"] = consumer
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("replica", consumer)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- senderd.Run(ctx, envload.MapGetenv(env, nil), senderd.Deps{Logger: log}) }()
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(waitLimit):
				result = errors.New("replica did not stop after its context was cancelled")
			}
		})
		return result
	}
	h.t.Cleanup(func() { _ = stop() })
	return stop
}

func newClient(t testing.TB, addr, token string) senderv1.SenderServiceClient {
	t.Helper()
	conn, err := grpcclient.New(addr, token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return senderv1.NewSenderServiceClient(conn)
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// enqueue queues messages and fails the test on error.
func (h *harness) enqueue(ctx context.Context, msgs ...*senderv1.OutboundMessage) []*senderv1.EnqueueResult {
	h.t.Helper()
	resp, err := h.client.Enqueue(ctx, &senderv1.EnqueueRequest{Messages: msgs})
	if err != nil {
		h.t.Fatalf("Enqueue: %v", err)
	}
	return resp.GetResults()
}

// waitState waits until the message with key has the wanted state.
func (h *harness) waitState(ctx context.Context, key string, want senderv1.MessageState) *senderv1.Message {
	h.t.Helper()
	var last *senderv1.Message
	err := eventually(ctx, func() bool {
		resp, err := h.client.GetMessage(ctx, &senderv1.GetMessageRequest{IdempotencyKey: key})
		if err != nil {
			return false
		}
		last = resp.GetMessage()
		return last.GetState() == want
	})
	if err != nil {
		h.t.Fatalf("message %q never reached %v (last seen: %v)", key, want, last)
	}
	return last
}

// waitDrained waits until no lane has waiting or pending entries.
func (h *harness) waitDrained(ctx context.Context) {
	h.t.Helper()
	var last *senderv1.GetQueueStatsResponse
	err := eventually(ctx, func() bool {
		resp, err := h.admin.GetQueueStats(ctx, &senderv1.GetQueueStatsRequest{})
		if err != nil {
			return false
		}
		last = resp
		for _, l := range resp.GetLanes() {
			if l.GetWaitingCount() != 0 || l.GetPendingCount() != 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		h.t.Fatalf("queue never drained (last stats: %v)", last)
	}
}

// mailsTo returns the caught messages for rcpt.
func (h *harness) mailsTo(rcpt string) []mailcatcher.Message {
	var out []mailcatcher.Message
	for _, m := range h.mail.Messages() {
		if mailcatcher.To(rcpt)(m) {
			out = append(out, m)
		}
	}
	return out
}

// pendingCount sums the pending entries of every stream of the group.
func (h *harness) pendingCount(ctx context.Context) int64 {
	h.t.Helper()
	keys, err := h.rdb.Keys(ctx, "snd:q:*").Result()
	if err != nil {
		h.t.Fatal(err)
	}
	var n int64
	for _, k := range keys {
		p, err := h.rdb.XPending(ctx, k, "senders").Result()
		if err != nil {
			h.t.Fatalf("XPENDING %s: %v", k, err)
		}
		n += p.Count
	}
	return n
}

// plantCanary adds an entry to stream that a consumer that died at once
// holds: a running reclaimer takes it over RetryAfter from now, which is
// the moment it would take over any entry idle since before. Its message id
// has no record, so whoever claims it acknowledges it without mailing.
func (h *harness) plantCanary(ctx context.Context, stream string) (entryID string) {
	h.t.Helper()
	var add *redis.StringCmd
	_, err := h.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		add = p.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"id", strings.Repeat("c", 32)}})
		p.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "senders", Consumer: "dead-canary", Streams: []string{stream, ">"}, Count: 1, Block: -1})
		return nil
	})
	if err != nil {
		h.t.Fatalf("plant canary: %v", err)
	}
	return add.Val()
}

// waitCanaryClaimed waits until a reclaimer took the canary over.
func (h *harness) waitCanaryClaimed(ctx context.Context, stream, entryID string) {
	h.t.Helper()
	err := eventually(ctx, func() bool {
		p, err := h.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: "senders", Start: entryID, End: entryID, Count: 1}).Result()
		return err == nil && (len(p) == 0 || p[0].Consumer != "dead-canary")
	})
	if err != nil {
		h.t.Fatalf("nobody claimed the canary %s on %s", entryID, stream)
	}
}

// eventually polls cond until it holds or ctx is done.
func eventually(ctx context.Context, cond func() bool) error {
	for {
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func bulkMessage(key, rcpt, contentID string, vars map[string]string) *senderv1.OutboundMessage {
	return &senderv1.OutboundMessage{
		IdempotencyKey: key, Recipient: rcpt, Lane: senderv1.Lane_LANE_BULK,
		ContentId: contentID, Variables: vars, ListUnsubscribeUrl: "https://paperroute.example/unsubscribe?t=" + key,
	}
}

func txMessage(key, rcpt, text string) *senderv1.OutboundMessage {
	return &senderv1.OutboundMessage{
		IdempotencyKey: key, Recipient: rcpt, Lane: senderv1.Lane_LANE_TRANSACTIONAL,
		Content: &senderv1.Content{Subject: "Confirm your subscription", TextBody: text},
	}
}

// faults builds mailcatcher faults for tests.
type faults struct {
	mu    sync.Mutex
	calls map[mailcatcher.Stage]int
}

func (f *faults) count(stage mailcatcher.Stage) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[stage]
}

// failFirst returns a fault that fails the first n commands at stage with
// err (an *smtp.SMTPError or mailcatcher.ErrDisconnect), then accepts.
func (f *faults) failFirst(stage mailcatcher.Stage, n int, err error) mailcatcher.Fault {
	return func(s mailcatcher.Stage, _ string) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.calls == nil {
			f.calls = map[mailcatcher.Stage]int{}
		}
		f.calls[s]++
		if s == stage && f.calls[s] <= n {
			return err
		}
		return nil
	}
}

// putContent stores content and returns its id.
func (h *harness) putContent(ctx context.Context, c *senderv1.Content) string {
	h.t.Helper()
	resp, err := h.client.PutContent(ctx, &senderv1.PutContentRequest{Content: c})
	if err != nil {
		h.t.Fatalf("PutContent: %v", err)
	}
	return resp.GetContentId()
}

// stats returns the queue statistics.
func (h *harness) stats(ctx context.Context) *senderv1.GetQueueStatsResponse {
	h.t.Helper()
	resp, err := h.admin.GetQueueStats(ctx, &senderv1.GetQueueStatsRequest{})
	if err != nil {
		h.t.Fatalf("GetQueueStats: %v", err)
	}
	return resp
}

func parseMail(t *testing.T, data []byte) *mailcatcher.Parsed {
	t.Helper()
	p, err := mailcatcher.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
