package digest_test

import (
	"context"
	"os"
	"strings"
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
	"github.com/paperroute/paperroute/services/digest/internal/library"
	"github.com/paperroute/paperroute/services/digest/internal/peers"
	"github.com/paperroute/paperroute/services/digest/internal/ranking"
	"github.com/paperroute/paperroute/services/digest/internal/redisstore"
	"github.com/paperroute/paperroute/services/digest/internal/render"
	"github.com/paperroute/paperroute/services/sender/sendertest"
	"github.com/paperroute/paperroute/services/subscriber/subscribertest"
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
	subs   *subscribertest.Fake
	names  map[string]string // subscriber id → the test's name for it
	sender *sendertest.Fake
	cfg    digest.Config
	svc    *digest.Service
	papers *library.Service
}

func newHarness(t *testing.T, now time.Time, papersPerEdition int) *harness {
	t.Helper()
	h := &harness{t: t, clock: &clock{t: now}, names: map[string]string{}}
	h.rdb = redistest.Start(t, redistest.WithoutAppendOnly()).Client()
	h.store = redisstore.New(h.rdb)
	h.subs = subscribertest.Start(t, serviceToken)
	h.subs.SetNow(now)
	h.sender = sendertest.Start(t, serviceToken)
	subConn, err := grpcclient.New(h.subs.Addr(), serviceToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { subConn.Close() })
	sendConn, err := grpcclient.New(h.sender.Addr(), serviceToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sendConn.Close() })
	r, err := render.New("Example Ltd, 1 Road, Town")
	if err != nil {
		t.Fatal(err)
	}
	subscribers := peers.NewSubscribers(subscriberv1.NewSubscriberServiceClient(subConn))
	h.cfg = digest.Config{
		Papers:           h.store,
		Runs:             h.store,
		Subscribers:      subscribers,
		Preferences:      subscribers,
		Sender:           peers.NewSender(senderv1.NewSenderServiceClient(sendConn)),
		Renderer:         r,
		Sent:             h.store,
		Catalogue:        ranking.DefaultCatalogue(),
		Ranking:          ranking.DefaultParams(),
		WeeklyWindow:     8 * 24 * time.Hour,
		SentMemory:       30 * 24 * time.Hour,
		Logger:           logging.Discard(),
		PapersPerEdition: papersPerEdition,
		Now:              h.clock.Now,
	}
	h.svc = h.restart()
	h.papers, err = library.New(library.Config{Store: h.store, MaxImportBytes: library.MaxImportBytes, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
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
	if _, err := h.papers.Import(context.Background(), library.FormatHFDailyJSON, data); err != nil {
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

// serviceToken is the token the digest presents to its fake peers.
const serviceToken = "digest-test-service-token"

// setNow sets the clock of the digest service and of the fake subscriber
// service.
func (h *harness) setNow(t time.Time) {
	h.clock.Set(t)
	h.subs.SetNow(t)
}

// keys returns the idempotency keys of every queued digest to rcpt, with
// the subscriber id written as the test's name for it
// ("digest:ada:2026-06-12").
func (h *harness) keys(rcpt string) []string {
	var keys []string
	for _, m := range h.sender.MailsTo(rcpt) {
		k := m.IdempotencyKey
		for id, name := range h.names {
			k = strings.Replace(k, ":"+id+":", ":"+name+":", 1)
		}
		keys = append(keys, k)
	}
	return keys
}

// subSpec is a subscriber to make ACTIVE: name@example.com with preferences.
type subSpec struct {
	name  string
	prefs *subscriberv1.Preferences
}

// sub is name@example.com, daily at hour in zone, with more preferences.
func sub(name, zone string, hour int32, prefs ...func(*subscriberv1.Preferences)) subSpec {
	p := &subscriberv1.Preferences{Timezone: zone, DeliveryHour: hour, Frequency: subscriberv1.Frequency_FREQUENCY_DAILY}
	for _, f := range prefs {
		f(p)
	}
	return subSpec{name: name, prefs: p}
}

// addSubs makes the subscribers ACTIVE in the fake subscriber service
// through its real sign-up and confirmation (those already added are
// left as they are); it returns their ids.
func (h *harness) addSubs(specs ...subSpec) []string {
	h.t.Helper()
	var ids []string
	for _, sp := range specs {
		id := ""
		for i, n := range h.names {
			if n == sp.name {
				id = i
			}
		}
		if id == "" {
			id = h.subs.AddActive(h.t, sp.name+"@example.com", sp.prefs).GetId()
			h.names[id] = sp.name
		}
		ids = append(ids, id)
	}
	return ids
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
