package chaos_test

import (
	"context"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
)

// bounces is a stand-in for the subscriber service's RecordDeliveryFailure
// (the only RPC the sender calls), recording the reported addresses. It
// is not a fake of the whole service: the subscriber module owns that.
type bounces struct {
	subscriberv1.UnimplementedSubscriberServiceServer
	addr string

	mu       sync.Mutex
	reported map[string]int
}

// startBouncesAt serves on addr (a port the test reserved).
func startBouncesAt(t *testing.T, addr string) *bounces {
	t.Helper()
	b := &bounces{reported: map[string]int{}}
	srv := grpc.NewServer()
	subscriberv1.RegisterSubscriberServiceServer(srv, b)
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b.addr = lis.Addr().String()
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return b
}

func (b *bounces) RecordDeliveryFailure(_ context.Context, req *subscriberv1.RecordDeliveryFailureRequest) (*subscriberv1.RecordDeliveryFailureResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reported[req.GetEmail()]++
	return &subscriberv1.RecordDeliveryFailureResponse{}, nil
}

func (b *bounces) got() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]int{}
	for k, v := range b.reported {
		out[k] = v
	}
	return out
}
