package senderd_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/mailcatcher"
	"github.com/paperroute/paperroute/platform/redistest"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
	"github.com/paperroute/paperroute/services/sender/senderd"
)

func TestSurvivesARedisRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, redistest.WithAppendFsync("always"))
	// The relay defers everything until the restart is over, so the
	// messages are queued (and pending) when Redis dies.
	var deferAll atomic.Bool
	deferAll.Store(true)
	h.mail.SetFault(func(stage mailcatcher.Stage, _ string) error {
		if stage == mailcatcher.StageRcpt && deferAll.Load() {
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "not now"}
		}
		return nil
	})
	h.start(nil)
	ctx := testContext(t)

	var keys []string
	for i := range 5 {
		key := fmt.Sprintf("before:%d", i)
		keys = append(keys, key)
		h.enqueue(ctx, txMessage(key, fmt.Sprintf("before%d@example.com", i), "hi"))
	}
	for _, key := range keys {
		if err := eventually(ctx, func() bool {
			resp, err := h.client.GetMessage(ctx, &senderv1.GetMessageRequest{IdempotencyKey: key})
			return err == nil && resp.GetMessage().GetAttemptCount() >= 1
		}); err != nil {
			t.Fatalf("%s was never attempted", key)
		}
	}

	h.redis.Kill()
	down, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := h.client.Enqueue(down, &senderv1.EnqueueRequest{Messages: []*senderv1.OutboundMessage{txMessage("during", "during@example.com", "x")}})
	cancel()
	if err == nil {
		t.Error("Enqueue succeeded while Redis was down")
	}
	h.redis.Restart()
	deferAll.Store(false)

	for i := range 2 { // the script cache is empty after the restart
		key := fmt.Sprintf("after:%d", i)
		keys = append(keys, key)
		h.enqueue(ctx, txMessage(key, fmt.Sprintf("after%d@example.com", i), "hi"))
	}
	for _, key := range keys {
		h.waitState(ctx, key, senderv1.MessageState_MESSAGE_STATE_SENT)
	}
	h.waitDrained(ctx)
	for _, rcpt := range []string{"before0", "before1", "before2", "before3", "before4", "after0", "after1"} {
		if n := len(h.mailsTo(rcpt + "@example.com")); n != 1 {
			t.Errorf("%s got %d mails, want 1", rcpt, n)
		}
	}
}

func TestShutdownWithASendInFlight(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		grace string
		// hold is how long the relay sits on the final dot; nil means until
		// the test ends.
		hold      time.Duration
		wantState queue.State
	}{
		{"send finishes within the grace period", "5s", 300 * time.Millisecond, queue.StateSent},
		// Cut off after the final dot: the relay may have it. It is not
		// lost: it waits in the delayed set for one retry after the lease.
		{"send outlasts the grace period", "300ms", 0, queue.StateUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			entered := make(chan struct{})
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			var once sync.Once
			h.mail.SetFault(func(stage mailcatcher.Stage, _ string) error {
				if stage == mailcatcher.StageData {
					once.Do(func() { close(entered) })
					if tt.hold > 0 {
						time.Sleep(tt.hold) // a slow relay, not test synchronisation
					} else {
						<-release
					}
				}
				return nil
			})
			h.start(map[string]string{"SHUTDOWN_GRACE": tt.grace})
			ctx := testContext(t)
			res := h.enqueue(ctx, txMessage("inflight", "inflight@example.com", "hi"))
			select {
			case <-entered:
			case <-ctx.Done():
				t.Fatal("the send never started")
			}
			if err := h.stop(); err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}

			store := redisstore.New(h.rdb, 2)
			m, err := store.GetMessage(ctx, res[0].GetMessageId())
			if err != nil {
				t.Fatal(err)
			}
			pending := h.pendingCount(ctx)
			switch m.State {
			case queue.StateSent:
				if pending != 0 {
					t.Errorf("SENT but %d entries still pending", pending)
				}
			case queue.StateQueued:
				if pending != 1 {
					t.Errorf("QUEUED with %d entries pending, want 1: unsent work must stay pending", pending)
				}
			case queue.StateUnknown:
				lane := queue.LaneTransactional
				due, err := h.rdb.ZScore(ctx, redisstore.DelayKey(lane, queue.Partition(m.ID, 2)), m.ID).Result()
				if err != nil || m.NextAttempt.IsZero() || int64(due) != m.NextAttempt.UnixMilli() {
					t.Errorf("UNKNOWN but not scheduled for a retry (due %v, %v; next attempt %v)", due, err, m.NextAttempt)
				}
			default:
				t.Errorf("state %v: the message was lost", m.State)
			}
			if m.State != tt.wantState {
				t.Errorf("state = %v, want %v", m.State, tt.wantState)
			}
		})
	}
}

// A replica that is shutting down still owns the sends it lets finish
// during the grace period: another replica must not take them over (and
// mail them a second time) while they are in flight.
// A read can return more entries than the reader holds slots for (COUNT
// applies per stream); the reader keeps the rest while it waits for slots.
// Those entries are this replica's work as much as the dispatched ones: the
// heartbeat must keep them, or another replica claims and sends them while
// this one is about to send them too.
func TestRelayDownAtStartUp(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	relayAddr := lis.Addr().String()
	lis.Close() // nothing listens there until the relay "comes up"
	h.start(map[string]string{"SENDER_SMTP_ADDR": relayAddr})
	ctx := testContext(t)

	h.enqueue(ctx, txMessage("early", "early@example.com", "hi"))
	if err := eventually(ctx, func() bool {
		body := httpGet(t, "http://"+h.httpAddr+"/metrics")
		return strings.Contains(body, "\nsender_smtp_dial_failures_total ") && !strings.Contains(body, "\nsender_smtp_dial_failures_total 0\n")
	}); err != nil {
		t.Fatal("the workers never tried the relay")
	}
	resp, err := h.client.GetMessage(ctx, &senderv1.GetMessageRequest{IdempotencyKey: "early"})
	if err != nil {
		t.Fatal(err)
	}
	if m := resp.GetMessage(); m.GetState() != senderv1.MessageState_MESSAGE_STATE_QUEUED || m.GetAttemptCount() != 0 {
		t.Errorf("while the relay is down: state %v, attempts %d; want QUEUED and 0 (dial failures are not attempts)", m.GetState(), m.GetAttemptCount())
	}

	relay, err := mailcatcher.Start(relayAddr, mailcatcher.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	m := h.waitState(ctx, "early", senderv1.MessageState_MESSAGE_STATE_SENT)
	if m.GetAttemptCount() != 1 {
		t.Errorf("attempt_count = %d, want 1", m.GetAttemptCount())
	}
	if _, err := relay.WaitFor(ctx, mailcatcher.To("early@example.com")); err != nil {
		t.Error(err)
	}
}

func TestConnectionsAreReusedAndRotated(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	proxy := newCountingProxy(t, h.mail.Addr())
	h.start(map[string]string{"SENDER_SMTP_ADDR": proxy.addr, "SENDER_WORKERS": "1", "SENDER_SMTP_MAX_PER_CONN": "2"})
	ctx := testContext(t)

	for i := range 5 {
		h.enqueue(ctx, txMessage(fmt.Sprintf("rot:%d", i), fmt.Sprintf("rot%d@example.com", i), "hi"))
		h.waitState(ctx, fmt.Sprintf("rot:%d", i), senderv1.MessageState_MESSAGE_STATE_SENT)
	}
	// 5 messages, 2 per connection: 3 connections.
	if got := proxy.accepted.Load(); got != 3 {
		t.Errorf("%d SMTP connections for 5 messages at 2 per connection, want 3", got)
	}
}

func TestRunRefusesABadStart(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	base := map[string]string{
		"REDIS_URL":                r.URL(),
		"PAPERROUTE_ADMIN_TOKEN":   adminToken,
		"PAPERROUTE_SERVICE_TOKEN": serviceToken,
		"SENDER_GRPC_ADDR":         "127.0.0.1:0",
		"SENDER_HTTP_ADDR":         "127.0.0.1:0",
	}
	closedPort := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return "redis://" + l.Addr().String()
	}()
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"missing tokens", map[string]string{"PAPERROUTE_ADMIN_TOKEN": "", "PAPERROUTE_SERVICE_TOKEN": ""}, "PAPERROUTE_ADMIN_TOKEN"},
		{"unreachable Redis", map[string]string{"REDIS_URL": closedPort}, "redis"},
		{"bad Redis URL", map[string]string{"REDIS_URL": "http://x"}, "unsupported scheme"},
		{"bad From", map[string]string{"SENDER_FROM": "not an address"}, "SENDER_FROM"},
		{"bad TLS mode", map[string]string{"SENDER_SMTP_TLS": "sometimes"}, "SENDER_SMTP_TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			err := senderd.Run(ctx, envload.MapGetenv(env, nil), senderd.Deps{Logger: logging.Discard()})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Run = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
	t.Run("no logger", func(t *testing.T) {
		if err := senderd.Run(context.Background(), envload.MapGetenv(base, nil), senderd.Deps{}); err == nil {
			t.Error("Run without a logger succeeded")
		}
	})
}

func TestRunRefusesAnotherPartitionCount(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(nil) // the queue is created with the harness's 2 partitions
	h.stats(testContext(t))
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SENDER_GRPC_ADDR": "127.0.0.1:0", "SENDER_HTTP_ADDR": "127.0.0.1:0"}
	for k, v := range h.env {
		env[k] = v
	}
	env["SENDER_PARTITIONS"] = "3"
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	err := senderd.Run(ctx, envload.MapGetenv(env, nil), senderd.Deps{Logger: logging.Discard()})
	if err == nil || !strings.Contains(err.Error(), "SENDER_PARTITIONS") {
		t.Errorf("Run with another partition count = %v, want an error naming SENDER_PARTITIONS", err)
	}
}

// countingProxy forwards TCP connections to a target and counts them.
type countingProxy struct {
	addr     string
	accepted atomic.Int64
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{addr: lis.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = lis.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			wg.Go(func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
				<-done
			})
		}
	})
	return p
}

// Both lanes of every partition are full when the service starts, so each
// read returns more entries than the reader holds slots for (COUNT applies
// per stream). Readers must not wait for slots while holding undispatched
// entries: with one worker that would deadlock.
func TestDrainsABacklogInBothLanesOfEveryPartition(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := testContext(t)
	store := redisstore.New(h.rdb, 2)
	if err := store.EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	var batch []queue.NewMessage
	for i := range 40 {
		lane := queue.LaneBulk
		if i%2 == 0 {
			lane = queue.LaneTransactional
		}
		batch = append(batch, queue.NewMessage{
			IdempotencyKey: fmt.Sprintf("backlog:%d", i), Recipient: fmt.Sprintf("b%d@example.com", i),
			Lane: lane, Content: &queue.Content{Subject: "s", Text: "t"}, ListUnsubscribeURL: "https://x.example/u",
		})
	}
	if _, err := queue.NewService(store, nil).Enqueue(ctx, batch); err != nil {
		t.Fatal(err)
	}
	h.start(map[string]string{"SENDER_WORKERS": "1", "SENDER_PARTITIONS": "2"})
	h.waitDrained(ctx)
	if n := len(h.mail.Messages()); n != 40 {
		t.Errorf("delivered %d messages, want 40", n)
	}
}
