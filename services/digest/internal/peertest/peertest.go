// Package peertest runs small in-memory stand-ins for the subscriber and
// sender services as real gRPC servers on loopback TCP, built with the
// platform's grpcserver (so the service token is checked exactly as the real
// services check it). Tests of the digest service use them to watch what it
// sends without running the other services.
package peertest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/grpcserver"
	"github.com/paperroute/paperroute/platform/logging"
)

// Tokens are the tokens the fakes accept.
var Tokens = auth.Tokens{Admin: "peertest-admin-token", Service: "peertest-service-token"}

// serve runs a grpcserver with the given policy until the test ends and
// returns its address; register registers the service.
func serve(t testing.TB, policy auth.Policy, register func(*grpcserver.Server)) string {
	t.Helper()
	authz, err := auth.NewAuthorizer(policy, Tokens)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := grpcserver.New(grpcserver.Config{Logger: logging.Discard(), Registerer: prometheus.NewRegistry(), Authorizer: authz})
	if err != nil {
		t.Fatal(err)
	}
	register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("peertest: serve: %v", err)
		}
	})
	return lis.Addr().String()
}

// Subscribers is a SubscriberService that serves ListDueSubscribers from a
// list, paginated with offset page tokens.
type Subscribers struct {
	subscriberv1.UnimplementedSubscriberServiceServer
	// Addr is the server's host:port.
	Addr string

	mu    sync.Mutex
	due   []*subscriberv1.DueSubscriber
	err   error
	calls int
}

// StartSubscribers starts a fake subscriber service serving due.
func StartSubscribers(t testing.TB, due ...*subscriberv1.DueSubscriber) *Subscribers {
	t.Helper()
	s := &Subscribers{due: due}
	s.Addr = serve(t, auth.Policy{
		subscriberv1.SubscriberService_ListDueSubscribers_FullMethodName: auth.Internal,
	}, func(srv *grpcserver.Server) { subscriberv1.RegisterSubscriberServiceServer(srv.GRPC, s) })
	return s
}

// SetDue replaces the due subscribers.
func (s *Subscribers) SetDue(due ...*subscriberv1.DueSubscriber) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.due = due
}

// FailWith makes every call fail with err (nil to stop failing).
func (s *Subscribers) FailWith(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// Calls is the number of ListDueSubscribers calls so far.
func (s *Subscribers) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// ListDueSubscribers implements subscriberv1.SubscriberServiceServer.
func (s *Subscribers) ListDueSubscribers(_ context.Context, req *subscriberv1.ListDueSubscribersRequest) (*subscriberv1.ListDueSubscribersResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return nil, s.err
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, status.Error(codes.InvalidArgument, "page_size must not be negative")
	case size == 0:
		size = 500
	case size > 5000:
		size = 5000
	}
	offset := 0
	if tok := req.GetPageToken(); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || n > len(s.due) {
			return nil, status.Error(codes.InvalidArgument, "bad page_token")
		}
		offset = n
	}
	end := min(offset+size, len(s.due))
	resp := &subscriberv1.ListDueSubscribersResponse{}
	for _, d := range s.due[offset:end] {
		resp.Subscribers = append(resp.Subscribers, proto.Clone(d).(*subscriberv1.DueSubscriber))
	}
	if end < len(s.due) {
		resp.NextPageToken = strconv.Itoa(end)
	}
	return resp, nil
}

// Sender is a SenderService that stores PutContent and records Enqueue with
// idempotency by key, checking messages roughly as the real sender does.
type Sender struct {
	senderv1.UnimplementedSenderServiceServer
	// Addr is the server's host:port.
	Addr string

	mu       sync.Mutex
	contents map[string]*senderv1.Content
	puts     []*senderv1.Content
	queued   []*senderv1.OutboundMessage
	keys     map[string]bool
	batches  int
	putErr   error
	err      error
	reject   func(*senderv1.OutboundMessage) bool
	blocked  chan struct{} // non-nil: Enqueue blocks and reports here
}

// StartSender starts a fake sender service.
func StartSender(t testing.TB) *Sender {
	t.Helper()
	s := &Sender{contents: map[string]*senderv1.Content{}, keys: map[string]bool{}}
	s.Addr = serve(t, auth.Policy{
		senderv1.SenderService_PutContent_FullMethodName: auth.Internal,
		senderv1.SenderService_Enqueue_FullMethodName:    auth.Internal,
	}, func(srv *grpcserver.Server) { senderv1.RegisterSenderServiceServer(srv.GRPC, s) })
	return s
}

// FailEnqueue makes Enqueue fail with err (nil to stop failing).
func (s *Sender) FailEnqueue(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// FailPutContent makes PutContent fail with err (nil to stop failing).
func (s *Sender) FailPutContent(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.putErr = err
}

// Reject makes Enqueue refuse, with InvalidArgument, every batch holding a
// message for which reject returns true.
func (s *Sender) Reject(reject func(*senderv1.OutboundMessage) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = reject
}

// BlockEnqueue makes Enqueue wait until the call's context ends. The
// returned channel receives a value each time a call starts waiting.
func (s *Sender) BlockEnqueue() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocked = make(chan struct{}, 100)
	return s.blocked
}

// Puts returns every PutContent content, in call order.
func (s *Sender) Puts() []*senderv1.Content {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.puts)
}

// Queued returns the messages queued (duplicates excluded), in order.
func (s *Sender) Queued() []*senderv1.OutboundMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.queued)
}

// Batches is the number of Enqueue calls that reached the fake.
func (s *Sender) Batches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batches
}

// PutContent implements senderv1.SenderServiceServer.
func (s *Sender) PutContent(_ context.Context, req *senderv1.PutContentRequest) (*senderv1.PutContentResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.putErr != nil {
		return nil, s.putErr
	}
	c := req.GetContent()
	if c.GetSubject() == "" || (c.GetHtmlBody() == "" && c.GetTextBody() == "") || len(c.GetHtmlBody()) > 1<<20 || len(c.GetTextBody()) > 1<<20 {
		return nil, status.Error(codes.InvalidArgument, "content needs a subject and a body of at most 1 MiB")
	}
	sum := sha256.Sum256([]byte(c.GetSubject() + "\x00" + c.GetHtmlBody() + "\x00" + c.GetTextBody()))
	id := "c_" + hex.EncodeToString(sum[:16])
	s.contents[id] = proto.Clone(c).(*senderv1.Content)
	s.puts = append(s.puts, proto.Clone(c).(*senderv1.Content))
	return &senderv1.PutContentResponse{ContentId: id}, nil
}

// variable is a template variable as the sender reads them.
var variable = regexp.MustCompile(`\{\{([a-z][a-z0-9_]{0,63})\}\}`)

// Enqueue implements senderv1.SenderServiceServer: all or nothing, and a
// key seen before is a duplicate.
func (s *Sender) Enqueue(ctx context.Context, req *senderv1.EnqueueRequest) (*senderv1.EnqueueResponse, error) {
	s.mu.Lock()
	s.batches++
	if blocked := s.blocked; blocked != nil {
		s.mu.Unlock()
		blocked <- struct{}{}
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if n := len(req.GetMessages()); n == 0 || n > 1000 {
		return nil, status.Error(codes.InvalidArgument, "messages: want 1..1000")
	}
	for i, m := range req.GetMessages() {
		if bad := s.invalid(m); bad != "" {
			return nil, status.Errorf(codes.InvalidArgument, "messages[%d]: %s", i, bad)
		}
	}
	resp := &senderv1.EnqueueResponse{}
	for _, m := range req.GetMessages() {
		key := m.GetIdempotencyKey()
		dup := s.keys[key]
		if !dup {
			s.keys[key] = true
			s.queued = append(s.queued, proto.Clone(m).(*senderv1.OutboundMessage))
		}
		resp.Results = append(resp.Results, &senderv1.EnqueueResult{IdempotencyKey: key, MessageId: "m_" + key, Duplicate: dup})
	}
	return resp, nil
}

// invalid says what is wrong with m, or "". Callers hold s.mu.
func (s *Sender) invalid(m *senderv1.OutboundMessage) string {
	switch {
	case s.reject != nil && s.reject(m):
		return "rejected by the test"
	case m.GetIdempotencyKey() == "" || len(m.GetIdempotencyKey()) > 200:
		return "idempotency_key: want 1..200 bytes"
	case m.GetRecipient() == "":
		return "recipient: required"
	case m.GetLane() == senderv1.Lane_LANE_UNSPECIFIED:
		return "lane: required"
	}
	c, ok := s.contents[m.GetContentId()]
	if !ok {
		return "content_id: unknown"
	}
	for _, body := range []string{c.GetSubject(), c.GetHtmlBody(), c.GetTextBody()} {
		for _, v := range variable.FindAllStringSubmatch(body, -1) {
			if _, ok := m.GetVariables()[v[1]]; !ok {
				return "variables: no value for {{" + v[1] + "}}"
			}
		}
	}
	return ""
}
