package digestd_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/platform/grpcerr"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/redistest"

	"github.com/paperroute/paperroute/services/digest/digestd"
	"github.com/paperroute/paperroute/services/sender/sendertest"
	"github.com/paperroute/paperroute/services/subscriber/subscribertest"
)

const fixture = "../internal/hfdaily/testdata/hf-daily-papers-2026-06-12.json"

// service is one running digest service with its fakes.
type service struct {
	client  digestv1.DigestServiceClient // with the admin token
	addr    string
	httpURL string
	redis   *redistest.Server
	rdb     redis.UniversalClient
	subs    *subscribertest.Fake
	sender  *sendertest.Fake
	stop    func() error // stops the service and returns Run's result
}

// start runs digestd.Run over loopback TCP against a private redis-server
// and fake subscriber and sender services; extra overrides the environment.
func start(t *testing.T, extra map[string]string) *service {
	t.Helper()
	return startWith(t, extra)
}

// startWith is start for tests and benchmarks; SENDER_GRPC_ADDR in extra
// replaces the fake sender with another.
func startWith(t testing.TB, extra map[string]string) *service {
	t.Helper()
	s := &service{redis: redistest.Start(t, redistest.WithoutAppendOnly())}
	s.rdb = s.redis.Client()
	s.subs = subscribertest.Start(t, serviceToken)
	s.subs.SetNow(dueNow)
	s.sender = sendertest.Start(t, serviceToken)

	env := map[string]string{
		"REDIS_URL":                s.redis.URL(),
		"PAPERROUTE_ADMIN_TOKEN":   adminToken,
		"PAPERROUTE_SERVICE_TOKEN": serviceToken,
		"SUBSCRIBER_GRPC_ADDR":     s.subs.Addr(),
		"SENDER_GRPC_ADDR":         s.sender.Addr(),
		"SHUTDOWN_GRACE":           "5s",
		"DIGEST_POSTAL_ADDRESS":    "Example Ltd, 1 Road, Town",
		"DIGEST_SOURCES":           "off", // no test reaches the internet
		// Tests run slots themselves (RunDigest with a slot), on their own
		// clock; the scheduler has its own tests.
		"DIGEST_SCHEDULER": "false",
	}
	for k, v := range extra {
		env[k] = v
	}
	grpcLis := listen(t)
	httpLis := listen(t)
	s.addr = grpcLis.Addr().String()
	s.httpURL = "http://" + httpLis.Addr().String()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- digestd.Run(ctx, envload.MapGetenv(env, nil), digestd.Deps{
			Logger: logging.Discard(), GRPCListener: grpcLis, HTTPListener: httpLis,
		})
	}()
	stopped := false
	var result error
	s.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			result = <-done
		}
		return result
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("digestd.Run = %v after shutdown, want nil", err)
		}
	})
	s.client = digestv1.NewDigestServiceClient(dial(t, s.addr, adminToken))
	return s
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// dial connects to addr presenting token ("" for none).
func dial(t testing.TB, addr, token string) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64 << 20))}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(auth.BearerToken{Token: token, AllowInsecure: true}))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func readFixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (s *service) importFixture(t testing.TB) {
	t.Helper()
	resp, err := s.client.ImportPapers(context.Background(), &digestv1.ImportPapersRequest{
		Format: digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, Data: readFixture(t),
	})
	if err != nil {
		t.Fatalf("ImportPapers: %v", err)
	}
	if n := len(resp.GetPaperIds()); n != 30 {
		t.Fatalf("ImportPapers stored %d papers, want 30", n)
	}
}

// digKeys counts the digest service's keys in Redis.
func (s *service) digKeys(t *testing.T) []string {
	t.Helper()
	keys, err := s.rdb.Keys(context.Background(), "dig:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// waitRun polls GetDigestRun until the run has finished.
func (s *service) waitRun(t *testing.T, id string) *digestv1.DigestRun {
	t.Helper()
	return s.waitRunFor(t, id, 20*time.Second)
}

// waitRunFor polls GetDigestRun until the run has finished, for at most
// timeout.
func (s *service) waitRunFor(t testing.TB, id string, timeout time.Duration) *digestv1.DigestRun {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := s.client.GetDigestRun(context.Background(), &digestv1.GetDigestRunRequest{RunId: id})
		if err != nil {
			t.Fatalf("GetDigestRun: %v", err)
		}
		if st := resp.GetRun().GetState(); st != digestv1.DigestRunState_DIGEST_RUN_STATE_RUNNING {
			return resp.GetRun()
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s still RUNNING: %v", id, resp.GetRun())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runDigest starts a run and waits for it to finish.
func (s *service) runDigest(t *testing.T, edition string, dryRun bool) *digestv1.DigestRun {
	t.Helper()
	resp, err := s.client.RunDigest(context.Background(), &digestv1.RunDigestRequest{Edition: edition, DryRun: dryRun})
	if err != nil {
		t.Fatalf("RunDigest(%q): %v", edition, err)
	}
	run := resp.GetRun()
	if run.GetState() != digestv1.DigestRunState_DIGEST_RUN_STATE_RUNNING || run.GetId() == "" || run.GetCreateTime() == nil {
		t.Errorf("RunDigest returned %v, want a RUNNING run with an id and create time", run)
	}
	return s.waitRun(t, run.GetId())
}

// The tokens of the service under test; the fake peers accept
// serviceToken.
const (
	adminToken   = "digestd-test-admin-token"
	serviceToken = "digestd-test-service-token"
)

// dueNow is the fake subscriber service's clock: edition runs ask it who
// is due now, and the readers addDue makes are due at 06:00 UTC.
var dueNow = time.Date(2026, 6, 12, 6, 0, 0, 0, time.UTC)

// addDue makes n readers ACTIVE (reader<i>@example.com, daily at 06:00
// UTC) through the fake subscriber service's real sign-up and confirmation,
// and returns them as it lists them to the digest: due at dueNow, with
// their signed links.
func (s *service) addDue(t testing.TB, n int) []*subscriberv1.DueSubscriber {
	t.Helper()
	prefs := &subscriberv1.Preferences{DeliveryHour: 6, Timezone: "UTC"}
	for i := range n {
		s.subs.AddActive(t, fmt.Sprintf("reader%d@example.com", i), prefs)
	}
	return listDue(t, s.subs, dueNow)
}

// listDue returns everyone the fake says is due at at, in its order.
func listDue(t testing.TB, f *subscribertest.Fake, at time.Time) []*subscriberv1.DueSubscriber {
	t.Helper()
	var out []*subscriberv1.DueSubscriber
	token := ""
	for {
		resp, err := f.ListDueSubscribers(context.Background(), &subscriberv1.ListDueSubscribersRequest{
			DueTime: timestamppb.New(at), PageSize: 5000, PageToken: token,
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.GetSubscribers()...)
		if token = resp.GetNextPageToken(); token == "" {
			return out
		}
	}
}

// counts is the part of a run the tests compare.
type counts struct {
	State                                   string
	Due, Queued, Duplicate, Skipped, Failed int64
}

func countsOf(r *digestv1.DigestRun) counts {
	return counts{
		State: strings.TrimPrefix(r.GetState().String(), "DIGEST_RUN_STATE_"),
		Due:   r.GetDueCount(), Queued: r.GetQueuedCount(), Duplicate: r.GetDuplicateCount(),
		Skipped: r.GetSkippedCount(), Failed: r.GetFailedCount(),
	}
}

func wantCode(t *testing.T, err error, code codes.Code, field string) {
	t.Helper()
	if got := status.Code(err); got != code {
		t.Fatalf("error = %v, want code %v", err, code)
	}
	if field == "" {
		return
	}
	if _, ok := grpcerr.FieldViolations(err)[field]; !ok {
		t.Errorf("error %v has field violations %v, want one on %q", err, grpcerr.FieldViolations(err), field)
	}
}
