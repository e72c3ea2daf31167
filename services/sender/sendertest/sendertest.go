// Package sendertest is the one in-memory fake of the sender service for
// other modules' tests. It is the real gRPC adapter and the real queue
// Service (so every request is validated exactly as the sender validates it,
// with the same field violations, content ids and duplicate handling) over
// an in-memory store instead of Redis, and it delivers nothing: tests read
// what was queued with Mails (subject, text and HTML with the variables
// filled in by the sender's own template engine) or Queued.
//
// Start serves it over real gRPC on a loopback port behind the platform
// server with the sender's own auth policy; New gives the bare
// senderv1.SenderServiceServer for in-process use. Hooks make calls fail,
// block or be refused, for tests of a caller's error handling.
package sendertest

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/grpcserver"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/metrics"
	"github.com/paperroute/paperroute/services/sender/internal/grpcapi"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// AdminToken is the operator token of a fake started with Start.
const AdminToken = "sendertest-admin-token"

// Mail is one queued message with its variables filled in, as the sender
// would mail it.
type Mail struct {
	IdempotencyKey string
	// MessageID is the id Enqueue returned for it.
	MessageID string
	// To is the recipient in the normalised form the sender stores.
	To      string
	Lane    senderv1.Lane
	Subject string
	Text    string
	HTML    string
	// ContentID is the stored content (inline content is stored too).
	ContentID string
	// ListUnsubscribeURL and Variables are as given.
	ListUnsubscribeURL string
	Variables          map[string]string
}

// Fake is an in-memory sender. Its zero value is not usable: use New or
// Start.
type Fake struct {
	*grpcapi.Server
	store *memStore
	addr  string

	mu      sync.Mutex
	putErr  error
	enqErr  error
	reject  func(*senderv1.OutboundMessage) bool
	blocked chan struct{}
	calls   int
	puts    []*senderv1.Content
	queued  []*senderv1.OutboundMessage
}

var _ senderv1.SenderServiceServer = (*Fake)(nil)

// New returns a fake that is not served; call its methods directly.
func New() *Fake {
	store := newMemStore()
	return &Fake{Server: grpcapi.NewServer(queue.NewService(store, nil)), store: store}
}

// Start serves a new fake over gRPC on a loopback port until t ends. It
// accepts serviceToken for INTERNAL calls and AdminToken for OPERATOR
// calls, with the sender's own per-RPC policy.
func Start(t testing.TB, serviceToken string) *Fake {
	t.Helper()
	f := New()
	authz, err := auth.NewAuthorizer(grpcapi.Policy(), auth.Tokens{Admin: AdminToken, Service: serviceToken})
	if err != nil {
		t.Fatalf("sendertest: %v", err)
	}
	srv, err := grpcserver.New(grpcserver.Config{Logger: logging.Discard(), Registerer: metrics.NewRegistry(), Authorizer: authz})
	if err != nil {
		t.Fatalf("sendertest: %v", err)
	}
	senderv1.RegisterSenderServiceServer(srv.GRPC, f)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sendertest: %v", err)
	}
	f.addr = lis.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sendertest: serve: %v", err)
		}
	})
	return f
}

// Addr is the host:port a fake from Start listens on ("" for New).
func (f *Fake) Addr() string { return f.addr }

// FailPutContent makes PutContent fail with err (nil: work again).
func (f *Fake) FailPutContent(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.putErr = err
}

// FailEnqueue makes Enqueue fail with err (nil: work again).
func (f *Fake) FailEnqueue(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.enqErr = err
}

// SetUnavailable makes Enqueue answer Unavailable (true) or work (false).
func (f *Fake) SetUnavailable(v bool) {
	var err error
	if v {
		err = status.Error(codes.Unavailable, "sendertest: unavailable")
	}
	f.FailEnqueue(err)
}

// Reject makes Enqueue refuse with InvalidArgument, queueing nothing,
// every batch that holds a message for which reject returns true (nil:
// stop refusing).
func (f *Fake) Reject(reject func(*senderv1.OutboundMessage) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reject = reject
}

// BlockEnqueue makes every later Enqueue wait until its context ends. The
// channel receives a value each time a call starts waiting.
func (f *Fake) BlockEnqueue() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blocked = make(chan struct{}, 100)
	return f.blocked
}

// Calls is the number of Enqueue calls that arrived, refused, failed and
// duplicate ones included.
func (f *Fake) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Puts returns the content of every successful PutContent, in call order.
func (f *Fake) Puts() []*senderv1.Content {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.puts)
}

// Queued returns each queued message as it was sent, once per idempotency
// key, in the order they were queued.
func (f *Fake) Queued() []*senderv1.OutboundMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.queued)
}

// Mails returns the queued messages rendered as the sender renders them,
// once per idempotency key, in the order they were queued.
func (f *Fake) Mails() []Mail {
	msgs, contents := f.store.snapshot()
	out := make([]Mail, len(msgs))
	for i, m := range msgs {
		r := contents[m.ContentID].Compile().Render(m.Variables)
		out[i] = Mail{
			IdempotencyKey: m.IdempotencyKey, MessageID: m.ID, To: m.Recipient,
			Lane: grpcapi.LaneToProto(m.Lane), Subject: r.Subject, Text: r.Text, HTML: r.HTML,
			ContentID: m.ContentID, ListUnsubscribeURL: m.ListUnsubscribeURL, Variables: m.Variables,
		}
	}
	return out
}

// MailsTo returns Mails addressed to rcpt (in normalised form).
func (f *Fake) MailsTo(rcpt string) []Mail {
	var out []Mail
	for _, m := range f.Mails() {
		if m.To == rcpt {
			out = append(out, m)
		}
	}
	return out
}

// Cancelled returns the recipients cancelled with CancelRecipient (in
// normalised form) and when.
func (f *Fake) Cancelled() map[string]time.Time { return f.store.cancelled() }

// PutContent implements senderv1.SenderServiceServer: the sender's own
// PutContent, recorded.
func (f *Fake) PutContent(ctx context.Context, req *senderv1.PutContentRequest) (*senderv1.PutContentResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.putErr != nil {
		return nil, f.putErr
	}
	resp, err := f.Server.PutContent(ctx, req)
	if err == nil {
		f.puts = append(f.puts, proto.Clone(req.GetContent()).(*senderv1.Content))
	}
	return resp, err
}

// Enqueue implements senderv1.SenderServiceServer: the sender's own
// Enqueue, recorded, after the hooks.
func (f *Fake) Enqueue(ctx context.Context, req *senderv1.EnqueueRequest) (*senderv1.EnqueueResponse, error) {
	f.mu.Lock()
	f.calls++
	if blocked := f.blocked; blocked != nil {
		f.mu.Unlock()
		select {
		case blocked <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	defer f.mu.Unlock()
	if f.enqErr != nil {
		return nil, f.enqErr
	}
	if f.reject != nil {
		for _, m := range req.GetMessages() {
			if f.reject(m) {
				return nil, status.Error(codes.InvalidArgument, "sendertest: refused by the test")
			}
		}
	}
	resp, err := f.Server.Enqueue(ctx, req)
	if err != nil {
		return nil, err
	}
	for i, r := range resp.GetResults() {
		if !r.GetDuplicate() {
			f.queued = append(f.queued, proto.Clone(req.GetMessages()[i]).(*senderv1.OutboundMessage))
		}
	}
	return resp, nil
}
