package grpcapi_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/services/sender/sendertest"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
	"github.com/paperroute/paperroute/services/subscriber/internal/testenv"
)

// percentile of sorted durations, in milliseconds.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(float64(len(sorted)-1)*p)]) / float64(time.Millisecond)
}

// runWorker works the job queue in the background, as a replica does.
func runWorker(b *testing.B, h *harness) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.Jobs.Run(ctx, logging.Discard(), h.Service.HandleJob)
	}()
	b.Cleanup(func() { cancel(); <-done })
}

// BenchmarkSubscribeAt1000rps is Subscribe end to end over gRPC on loopback
// (validation, the four GCRA limit checks in Redis, the job XADD) at an
// open-loop rate of 1,000 requests/s, each from a new address and client IP,
// with the background worker creating records and handing confirmations to
// the (in-memory, gRPC) sender meanwhile. Latency is measured from each
// request's scheduled start, so a stall shows in the tail (no coordinated
// omission). One op is one request.
func BenchmarkSubscribeAt1000rps(b *testing.B) {
	h := start(b)
	runWorker(b, h)
	const interval = time.Millisecond
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	errs := make(chan error, b.N)
	b.ResetTimer()
	begin := time.Now()
	for i := range b.N {
		at := begin.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(at))
		wg.Go(func() {
			_, err := h.client.Subscribe(context.Background(), &subscriberv1.SubscribeRequest{
				Email: fmt.Sprintf("bench%d@example.com", i), ConsentTextVersion: "v1",
				ClientIp: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Topics: []string{"llm"},
			})
			lat[i] = time.Since(at)
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(begin)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	slices.Sort(lat)
	b.ReportMetric(percentile(lat, 0.50), "p50-ms")
	b.ReportMetric(percentile(lat, 0.99), "p99-ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
}

// BenchmarkSubscribeKnownVsNew compares the Subscribe latency of an address
// the service knows (ACTIVE) with a new one, interleaved, closed loop, one
// request at a time: the request path does the same work for both, so the
// medians should be within noise of each other. One op is one pair.
func BenchmarkSubscribeKnownVsNew(b *testing.B) {
	h := start(b)
	runWorker(b, h)
	ctx := context.Background()
	// The known address: subscribed and confirmed.
	if _, err := h.client.Subscribe(ctx, &subscriberv1.SubscribeRequest{Email: "known@example.com", ConsentTextVersion: "v1"}); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(h.MailsTo("known@example.com")) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	mails := h.MailsTo("known@example.com")
	if len(mails) == 0 {
		b.Fatal("no confirmation mail")
	}
	if _, err := h.client.ConfirmSubscription(ctx, &subscriberv1.ConfirmSubscriptionRequest{Token: confirmTokenOf(b, h, mails[0])}); err != nil {
		b.Fatal(err)
	}
	known, fresh := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
	call := func(email string, ip int) time.Duration {
		t0 := time.Now()
		if _, err := h.client.Subscribe(ctx, &subscriberv1.SubscribeRequest{Email: email, ConsentTextVersion: "v1", ClientIp: fmt.Sprintf("10.9.%d.%d", ip>>8&255, ip&255)}); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	b.ResetTimer()
	for i := range b.N {
		// Alternate the order so neither kind always runs second.
		if i%2 == 0 {
			known = append(known, call("known@example.com", 2*i))
			fresh = append(fresh, call(fmt.Sprintf("new%d@example.com", i), 2*i+1))
		} else {
			fresh = append(fresh, call(fmt.Sprintf("new%d@example.com", i), 2*i+1))
			known = append(known, call("known@example.com", 2*i))
		}
	}
	b.StopTimer()
	slices.Sort(known)
	slices.Sort(fresh)
	k, n := percentile(known, 0.5), percentile(fresh, 0.5)
	b.ReportMetric(k, "known-p50-ms")
	b.ReportMetric(n, "new-p50-ms")
	b.ReportMetric(100*(k-n)/n, "diff-%")
}

// BenchmarkListDueSlot lists one delivery slot holding 10 % of all
// subscribers (SUBSCRIBER_BENCH_TOTAL, default 1,000,000: 100,000 due),
// page by page (5,000 a page) through ListDueSubscribers over gRPC, links
// signed. It also reports Redis memory per subscriber (used_memory growth
// over the load, divided by the subscribers). Loading goes through the real
// Store, 32 at a time; it is not timed.
func BenchmarkListDueSlot(b *testing.B) {
	total := 1_000_000
	if v := os.Getenv("SUBSCRIBER_BENCH_TOTAL"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		total = n
	}
	h := start(b)
	ctx := context.Background()
	mem := func() int64 {
		info, err := h.RDB.InfoMap(ctx, "memory").Result()
		if err != nil {
			b.Fatal(err)
		}
		v, _ := strconv.ParseInt(info["Memory"]["used_memory"], 10, 64)
		return v
	}
	before := mem()
	zones := []string{"Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Tokyo", "UTC"}
	// 07:30 in Berlin on a summer day; the local hour of each zone then.
	dueAt := time.Date(2026, 6, 12, 5, 30, 0, 0, time.UTC)
	dueHour := map[string]int{}
	for _, z := range zones {
		loc, err := time.LoadLocation(z)
		if err != nil {
			b.Fatal(err)
		}
		dueHour[z] = dueAt.In(loc).Hour()
	}
	signup := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	next := make(chan int, 1024)
	for range 32 {
		wg.Go(func() {
			for i := range next {
				hour, zone := 7, "Europe/Berlin"
				if i%10 != 0 { // 10 % in the measured slot, the rest in slots not due then
					hour, zone = i%24, zones[i%len(zones)]
					if hour == dueHour[zone] {
						hour = (hour + 12) % 24
					}
				}
				email := fmt.Sprintf("s%d@example.com", i)
				sub := subscription.Subscriber{
					ID: fmt.Sprintf("01K%023d", i), Email: email, State: subscription.StateActive,
					CreateTime: signup, UpdateTime: signup,
					Consent: subscription.ConsentEvidence{ConsentTextVersion: "v1", SignupTime: signup, ConfirmTime: signup, Source: "subscribe"},
					Preferences: subscription.Preferences{Topics: []string{"llm", "rl"}, Keywords: []string{}, Frequency: subscription.FrequencyDaily,
						DeliveryHour: hour, Timezone: zone, Locale: "en"},
				}
				if err := h.Store.Create(ctx, email, sub); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	for i := range total {
		next <- i
	}
	close(next)
	wg.Wait()
	perSub := float64(mem()-before) / float64(total)
	at := timestamppb.New(dueAt)
	want := (total + 9) / 10
	b.ResetTimer()
	for range b.N {
		got := 0
		req := &subscriberv1.ListDueSubscribersRequest{DueTime: at, PageSize: 5000}
		for {
			res, err := h.client.ListDueSubscribers(internal(), req)
			if err != nil {
				b.Fatal(err)
			}
			got += len(res.GetSubscribers())
			if res.GetNextPageToken() == "" {
				break
			}
			req.PageToken = res.GetNextPageToken()
		}
		if got != want {
			b.Fatalf("listed %d due, want %d", got, want)
		}
	}
	b.StopTimer()
	b.ReportMetric(perSub, "redis-bytes/subscriber")
	b.ReportMetric(float64(want), "due")
}

// confirmTokenOf is the confirm token in mail m.
func confirmTokenOf(b *testing.B, h *harness, m sendertest.Mail) string {
	_, tok := testenv.Link(b, h.PublicURL, m, "confirm")
	return tok
}
