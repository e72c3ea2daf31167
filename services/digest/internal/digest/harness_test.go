package digest_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/grpcclient"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/redistest"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/peers"
	"github.com/paperroute/paperroute/services/digest/internal/peertest"
	"github.com/paperroute/paperroute/services/digest/internal/ranking"
	"github.com/paperroute/paperroute/services/digest/internal/redisstore"
	"github.com/paperroute/paperroute/services/digest/internal/render"
	"github.com/paperroute/paperroute/services/sender/sendertest"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// harness is a digest Service on a private Redis with fake peers over
// real gRPC, on a settable clock.
type harness struct {
	t      *testing.T
	clock  *clock
	rdb    redis.UniversalClient
	store  *redisstore.Store
	subs   *peertest.Subscribers
	sender *sendertest.Fake
	cfg    digest.Config
	svc    *digest.Service
}

func newHarness(t *testing.T, now time.Time, papersPerEdition int) *harness {
	t.Helper()
	h := &harness{t: t, clock: &clock{t: now}}
	h.rdb = redistest.Start(t, redistest.WithoutAppendOnly()).Client()
	h.store = redisstore.New(h.rdb)
	h.subs = peertest.StartSubscribers(t)
	h.sender = sendertest.Start(t, peertest.Tokens.Service)
	subConn, err := grpcclient.New(h.subs.Addr, peertest.Tokens.Service)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { subConn.Close() })
	sendConn, err := grpcclient.New(h.sender.Addr(), peertest.Tokens.Service)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sendConn.Close() })
	r, err := render.New("Example Ltd, 1 Road, Town")
	if err != nil {
		t.Fatal(err)
	}
	h.cfg = digest.Config{
		Papers:           h.store,
		Runs:             h.store,
		Subscribers:      peers.NewSubscribers(subscriberv1.NewSubscriberServiceClient(subConn)),
		Sender:           peers.NewSender(senderv1.NewSenderServiceClient(sendConn)),
		Renderer:         r,
		Sent:             h.store,
		Catalogue:        ranking.DefaultCatalogue(),
		Ranking:          ranking.DefaultParams(),
		WeeklyWindow:     8 * 24 * time.Hour,
		SentMemory:       30 * 24 * time.Hour,
		Logger:           logging.Discard(),
		PapersPerEdition: papersPerEdition,
		MaxImportBytes:   8 << 20,
		Now:              h.clock.Now,
	}
	h.svc = h.restart()
	return h
}

// restart returns a new Service on the same Redis and peers, as after a
// process restart; the old one is shut down when the test ends.
func (h *harness) restart() *digest.Service {
	svc, err := digest.New(h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { svc.Shutdown(context.Background()) })
	h.svc = svc
	return svc
}

// importFixture imports the 30 papers featured on 12 June 2026 (00:00 UTC).
func (h *harness) importFixture() {
	h.t.Helper()
	data, err := os.ReadFile("../hfdaily/testdata/hf-daily-papers-2026-06-12.json")
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.svc.ImportPapers(context.Background(), digest.FormatHFDailyJSON, data); err != nil {
		h.t.Fatal(err)
	}
}

// run runs req and waits for the run to finish.
func (h *harness) run(req digest.RunRequest) digest.Run {
	h.t.Helper()
	run, err := h.svc.RunDigest(context.Background(), req)
	if err != nil {
		h.t.Fatalf("RunDigest(%+v): %v", req, err)
	}
	return waitRun(h.t, h.svc, run.ID)
}

// keys returns the idempotency keys of every queued digest to rcpt.
func (h *harness) keys(rcpt string) []string {
	var keys []string
	for _, m := range h.sender.MailsTo(rcpt) {
		keys = append(keys, m.IdempotencyKey)
	}
	return keys
}

// sub is a due subscriber with preferences.
func sub(id, zone string, hour int32, prefs ...func(*subscriberv1.Preferences)) *subscriberv1.DueSubscriber {
	p := &subscriberv1.Preferences{Timezone: zone, DeliveryHour: hour, Frequency: subscriberv1.Frequency_FREQUENCY_DAILY}
	for _, f := range prefs {
		f(p)
	}
	return &subscriberv1.DueSubscriber{
		SubscriberId: id, Email: id + "@example.com",
		UnsubscribeUrl: "https://paperroute.example/u?t=" + id, ManageUrl: "https://paperroute.example/p?t=" + id,
		Preferences: p,
	}
}

func weekly(day subscriberv1.Weekday) func(*subscriberv1.Preferences) {
	return func(p *subscriberv1.Preferences) {
		p.Frequency, p.WeeklyDay = subscriberv1.Frequency_FREQUENCY_WEEKLY, day
	}
}

func topics(ids ...string) func(*subscriberv1.Preferences) {
	return func(p *subscriberv1.Preferences) { p.Topics = ids }
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}
