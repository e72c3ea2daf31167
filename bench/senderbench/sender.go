package senderbench

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/bench/internal/proc"
	"github.com/paperroute/paperroute/bench/internal/redisproc"
	"github.com/paperroute/paperroute/platform/grpcclient"
)

const (
	adminToken   = "bench-admin-token-0123456789abcdef"
	serviceToken = "bench-service-token-0123456789abcdef"
)

// senderProc is a running sender process and a client of its API.
type senderProc struct {
	*proc.Process
	conn   *grpc.ClientConn
	client senderv1.SenderServiceClient
}

// startSender runs a sender process against redisURL delivering to
// smtpAddr, with env added last (so it overrides the defaults here).
func startSender(ctx context.Context, redisURL, smtpAddr, cpuProfile string, env []string) (*senderProc, error) {
	gport, err := redisproc.FreePort()
	if err != nil {
		return nil, err
	}
	hport, err := redisproc.FreePort()
	if err != nil {
		return nil, err
	}
	grpcAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(gport))
	base := []string{
		"SENDER_GRPC_ADDR=" + grpcAddr,
		"SENDER_HTTP_ADDR=" + net.JoinHostPort("127.0.0.1", strconv.Itoa(hport)),
		"SENDER_REDIS_URL=" + redisURL,
		"SENDER_SMTP_ADDR=" + smtpAddr,
		"SENDER_SMTP_TLS=none", // the sink is on loopback and offers no STARTTLS
		"SENDER_FROM=" + fromAddress,
		"SENDER_MESSAGE_ID_DOMAIN=" + msgIDDomain,
		"SENDER_CONSUMER=bench-" + strconv.Itoa(gport),
		"PAPERROUTE_ADMIN_TOKEN=" + adminToken,
		"PAPERROUTE_SERVICE_TOKEN=" + serviceToken,
		"LOG_LEVEL=warn",
	}
	if cpuProfile != "" {
		base = append(base, cpuProfileEnv+"="+cpuProfile)
	}
	cmd, err := roleCommand("sender", append(base, env...)...)
	if err != nil {
		return nil, err
	}
	p, err := proc.Start(ctx, "sender", cmd)
	if err != nil {
		return nil, err
	}
	conn, err := grpcclient.New(grpcAddr, serviceToken)
	if err != nil {
		_ = p.Stop(time.Second)
		return nil, err
	}
	s := &senderProc{Process: p, conn: conn, client: senderv1.NewSenderServiceClient(conn)}
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		// GetQueueStats is for operators; a lookup of a key that does not
		// exist answers NotFound once the service is up.
		_, err := s.client.GetMessage(cctx, &senderv1.GetMessageRequest{IdempotencyKey: "bench:ready"})
		cancel()
		if status.Code(err) == codes.NotFound {
			return s, nil
		}
		select {
		case <-p.Exited():
			_ = conn.Close()
			return nil, fmt.Errorf("senderbench: the sender exited at start: %s", p.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.close()
			return nil, fmt.Errorf("senderbench: the sender is not serving after 30s: %w: %s", err, p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// close stops the sender gracefully (SIGTERM).
func (s *senderProc) close() error {
	_ = s.conn.Close()
	return s.Stop(15 * time.Second)
}

// putContent stores the benchmark digest and returns its id.
func (s *senderProc) putContent(ctx context.Context) (string, error) {
	resp, err := s.client.PutContent(ctx, &senderv1.PutContentRequest{Content: &senderv1.Content{
		Subject: subjectTemplate, HtmlBody: htmlTemplate, TextBody: textTemplate,
	}})
	if err != nil {
		return "", fmt.Errorf("senderbench: PutContent: %w", err)
	}
	return resp.GetContentId(), nil
}

// enqueueBulk queues messages [from, to) of the run in batches of batch.
func (s *senderProc) enqueueBulk(ctx context.Context, run, contentID string, from, to, batch int) error {
	for start := from; start < to; start += batch {
		end := min(start+batch, to)
		msgs := make([]*senderv1.OutboundMessage, 0, end-start)
		for i := start; i < end; i++ {
			addr, name, unsub := recipient(i)
			msgs = append(msgs, &senderv1.OutboundMessage{
				IdempotencyKey:     fmt.Sprintf("bench:%s:%d", run, i),
				Recipient:          addr,
				Lane:               senderv1.Lane_LANE_BULK,
				ContentId:          contentID,
				Variables:          map[string]string{"name": name, "unsubscribe_url": unsub},
				ListUnsubscribeUrl: unsub,
			})
		}
		if _, err := s.client.Enqueue(ctx, &senderv1.EnqueueRequest{Messages: msgs}); err != nil {
			return fmt.Errorf("senderbench: Enqueue: %w", err)
		}
	}
	return nil
}

// enqueueTx queues one small transactional message.
func (s *senderProc) enqueueTx(ctx context.Context, key string, i int) error {
	_, err := s.client.Enqueue(ctx, &senderv1.EnqueueRequest{Messages: []*senderv1.OutboundMessage{{
		IdempotencyKey: key,
		Recipient:      fmt.Sprintf("new%d@example.com", i),
		Lane:           senderv1.Lane_LANE_TRANSACTIONAL,
		Content: &senderv1.Content{
			Subject:  "Confirm your subscription",
			TextBody: "Click to confirm: https://paperroute.invalid/confirm?token=abc\n",
		},
	}}})
	if err != nil {
		return fmt.Errorf("senderbench: Enqueue transactional: %w", err)
	}
	return nil
}

// sendTime is when the sender recorded the relay's 250 for key.
func (s *senderProc) sendTime(ctx context.Context, key string) (time.Time, error) {
	resp, err := s.client.GetMessage(ctx, &senderv1.GetMessageRequest{IdempotencyKey: key})
	if err != nil {
		return time.Time{}, fmt.Errorf("senderbench: GetMessage %s: %w", key, err)
	}
	if resp.GetMessage().GetSendTime() == nil {
		return time.Time{}, fmt.Errorf("senderbench: message %s is %s, not sent", key, resp.GetMessage().GetState())
	}
	return resp.GetMessage().GetSendTime().AsTime(), nil
}
