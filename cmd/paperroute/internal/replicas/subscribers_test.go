package replicas_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/mailcatcher"
)

// The Subscribe abuse limit checked across the subscriber replicas:
// SUBSCRIBER_LIMIT_PER_IP is limitPerIP sign-ups per hour from one client
// address, whichever replica takes them.
const (
	limitPerIP = 2
	abuserIP   = "198.51.100.9"
)

// limitAddrs are the addresses the abuser signs up: the first limitPerIP
// get a confirmation mail, the last is refused.
var limitAddrs = []string{"limit-a@example.net", "limit-b@example.net", "limit-c@example.net"}

// subscribeFromAbuser signs email up through p from abuserIP and returns
// the gRPC code of the answer.
func subscribeFromAbuser(ctx context.Context, t *testing.T, p *process, email string) codes.Code {
	t.Helper()
	_, err := subscriberv1.NewSubscriberServiceClient(dial(t, p)).Subscribe(ctx, &subscriberv1.SubscribeRequest{
		Email: email, ConsentTextVersion: "v1", ClientIp: abuserIP, UserAgent: "replicas-test", Timezone: "UTC",
	})
	return status.Code(err)
}

// signUpAbuser signs the abuser up through both replicas: the first
// sign-up through each passes, a second through second is over the limit
// although that replica has seen only one.
func signUpAbuser(ctx context.Context, t *testing.T, first, second *process) error {
	t.Helper()
	for _, c := range []struct {
		p     *process
		email string
		want  codes.Code
	}{{first, limitAddrs[0], codes.OK}, {second, limitAddrs[1], codes.OK}, {second, limitAddrs[2], codes.ResourceExhausted}} {
		if got := subscribeFromAbuser(ctx, t, c.p, c.email); got != c.want {
			return fmt.Errorf("Subscribe(%s) from %s through %s = %v, want %v (SUBSCRIBER_LIMIT_PER_IP=%d/1h for all replicas)", c.email, abuserIP, c.p.name, got, c.want, limitPerIP)
		}
	}
	return nil
}

// rebind reserves a killed replica's addresses again for its replacement,
// as a restarted pod keeps its Service: the peers that call it need no
// change.
func rebind(t *testing.T, old *process) *process {
	t.Helper()
	p := &process{name: old.name + "'", grpcAddr: old.grpcAddr, httpAddr: old.httpAddr, done: make(chan struct{})}
	for addr, l := range map[string]**net.TCPListener{p.grpcAddr: &p.grpcLis, p.httpAddr: &p.httpLis} {
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("rebind %s on %s: %v", old.name, addr, err)
		}
		*l = lis.(*net.TCPListener)
		t.Cleanup(func() { _ = lis.Close() })
	}
	return p
}

// countTo counts the messages to rcpt.
func countTo(msgs []mailcatcher.Message, rcpt string) int {
	n := 0
	for _, m := range msgs {
		if slices.Contains(m.To, rcpt) {
			n++
		}
	}
	return n
}
