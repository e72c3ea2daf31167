// Package peertest runs small in-memory stand-ins for the subscriber and
// sender services as real gRPC servers on loopback TCP, built with the
// platform's grpcserver (so the service token is checked exactly as the real
// services check it). Tests of the digest service use them to watch what it
// sends without running the other services.
package peertest

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

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
