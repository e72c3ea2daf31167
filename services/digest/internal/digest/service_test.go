package digest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/grpcclient"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/redistest"

	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/peers"
	"github.com/paperroute/paperroute/services/digest/internal/ranking"
	"github.com/paperroute/paperroute/services/digest/internal/redisstore"
	"github.com/paperroute/paperroute/services/digest/internal/render"
	"github.com/paperroute/paperroute/services/sender/sendertest"
	"github.com/paperroute/paperroute/services/subscriber/subscribertest"
)

// config returns a Config on a private Redis and fake peers reached over
// real gRPC.
func config(t *testing.T, now func() time.Time) digest.Config {
	t.Helper()
	store := redisstore.New(redistest.Start(t, redistest.WithoutAppendOnly()).Client())
	// One ACTIVE subscriber, due at the clock's time.
	at := time.Now()
	if now != nil {
		at = now()
	}
	subs := subscribertest.Start(t, serviceToken)
	subs.SetNow(at)
	subs.AddActive(t, "a@example.com", &subscriberv1.Preferences{DeliveryHour: int32(at.UTC().Hour()), Timezone: "UTC"})
	sender := sendertest.Start(t, serviceToken)
	subConn, err := grpcclient.New(subs.Addr(), serviceToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { subConn.Close() })
	sendConn, err := grpcclient.New(sender.Addr(), serviceToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sendConn.Close() })
	r, err := render.New("Example Ltd, 1 Road, Town")
	if err != nil {
		t.Fatal(err)
	}
	return digest.Config{
		Papers:           store,
		Runs:             store,
		Subscribers:      peers.NewSubscribers(subscriberv1.NewSubscriberServiceClient(subConn)),
		Sender:           peers.NewSender(senderv1.NewSenderServiceClient(sendConn)),
		Renderer:         r,
		Sent:             store,
		Catalogue:        ranking.DefaultCatalogue(),
		Ranking:          ranking.DefaultParams(),
		WeeklyWindow:     8 * 24 * time.Hour,
		SentMemory:       30 * 24 * time.Hour,
		Logger:           logging.Discard(),
		PapersPerEdition: 10,
		Now:              now,
	}
}

func newService(t *testing.T, now func() time.Time) *digest.Service {
	t.Helper()
	svc, err := digest.New(config(t, now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := svc.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return svc
}

// waitRun waits until the run has finished.
func waitRun(t *testing.T, svc *digest.Service, id string) digest.Run {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		run, err := svc.GetRun(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if run.State != digest.RunRunning {
			return run
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s still running", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunDigestUsesTheClock(t *testing.T) {
	// 23:30 in Los Angeles on 12 June is already 13 June in UTC.
	la := time.FixedZone("PDT", -7*3600)
	now := time.Date(2026, 6, 12, 23, 30, 0, 0, la)
	svc := newService(t, func() time.Time { return now })

	run, err := svc.RunDigest(context.Background(), digest.RunRequest{Edition: "", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if run.Edition != "2026-06-13" {
		t.Errorf("edition = %q, want today in UTC, 2026-06-13", run.Edition)
	}
	if !run.CreateTime.Equal(now) {
		t.Errorf("create time = %v, want the clock's %v", run.CreateTime, now)
	}
	if id := ulid.MustParse(run.ID); ulid.Time(id.Time()).UnixMilli() != now.UnixMilli() {
		t.Errorf("run id %s carries time %v, want %v", run.ID, ulid.Time(id.Time()), now)
	}
	done := waitRun(t, svc, run.ID)
	if done.State != digest.RunSucceeded || done.Counts.Skipped != 1 || !done.FinishTime.Equal(now) {
		t.Errorf("run = %+v, want SUCCEEDED with the one subscriber skipped (no papers) at the clock's time", done)
	}
}

func TestNoRunsAfterShutdown(t *testing.T) {
	svc := newService(t, nil)
	run, err := svc.RunDigest(context.Background(), digest.RunRequest{Edition: "2026-06-12", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RunDigest(context.Background(), digest.RunRequest{Edition: "2026-06-12", DryRun: true}); !errors.Is(err, digest.ErrShuttingDown) {
		t.Errorf("RunDigest after Shutdown = %v, want ErrShuttingDown", err)
	}
	got, err := svc.GetRun(context.Background(), run.ID)
	if err != nil || got.State == digest.RunRunning {
		t.Errorf("run after Shutdown = %+v, %v; want it finished or interrupted", got, err)
	}
}

func TestGetRunAcceptsLowerCase(t *testing.T) {
	svc := newService(t, nil)
	run, err := svc.RunDigest(context.Background(), digest.RunRequest{Edition: "2026-06-12", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	lower := []byte(run.ID)
	for i, c := range lower {
		if c >= 'A' && c <= 'Z' {
			lower[i] = c + 'a' - 'A'
		}
	}
	if got, err := svc.GetRun(context.Background(), string(lower)); err != nil || got.ID != run.ID {
		t.Errorf("GetRun(%s) = %+v, %v; want run %s", lower, got, err, run.ID)
	}
	waitRun(t, svc, run.ID)
}

func TestNewRejectsBadConfig(t *testing.T) {
	good := config(t, nil)
	tests := []struct {
		name   string
		change func(*digest.Config)
	}{
		{"no store", func(c *digest.Config) { c.Papers = nil }},
		{"no logger", func(c *digest.Config) { c.Logger = nil }},
		{"zero papers", func(c *digest.Config) { c.PapersPerEdition = 0 }},
		{"too many papers", func(c *digest.Config) { c.PapersPerEdition = 51 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.change(&cfg)
			if _, err := digest.New(cfg); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}
