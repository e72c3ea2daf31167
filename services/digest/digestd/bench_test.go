package digestd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/redistest"

	"github.com/paperroute/paperroute/services/sender/senderd"
	"github.com/paperroute/paperroute/services/subscriber/subscriberd"
)

// benchSubscribers is how many ACTIVE subscribers are due in the slot;
// BENCH_SUBSCRIBERS overrides it for a quick look.
const benchSubscribers = 100_000

// benchTopics is the topic mix: a fifth of the readers choose none, the
// rest one or two of the catalogue's topics, some a keyword too.
var benchTopics = []string{"llm", "reasoning", "agents", "diffusion", "multimodal", "video",
	"vision", "3d", "robotics", "rl", "efficiency", "code", "speech", "safety", "retrieval", "science"}

// benchPrefs is reader i's preferences: daily at 08:00 in Berlin (06:00
// UTC in June), with the topic mix.
func benchPrefs(i int) *subscriberv1.Preferences {
	p := &subscriberv1.Preferences{
		Frequency: subscriberv1.Frequency_FREQUENCY_DAILY, DeliveryHour: 8, Timezone: "Europe/Berlin",
	}
	if i%5 != 0 {
		p.Topics = []string{benchTopics[i%len(benchTopics)]}
		if i%3 == 0 {
			if t := benchTopics[(i/7)%len(benchTopics)]; t != p.Topics[0] {
				p.Topics = append(p.Topics, t)
			}
		}
		if i%11 == 0 {
			p.Keywords = []string{"attention"}
		}
	}
	return p
}

// importSubscribers makes n readers ACTIVE through the subscriber
// service's ImportSubscribers (JSON Lines rows with consent evidence), far
// quicker than n sign-ups.
func importSubscribers(b *testing.B, client subscriberv1.SubscriberServiceClient, n int) {
	b.Helper()
	stream, err := client.ImportSubscribers(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	first := true
	var buf bytes.Buffer
	flush := func() {
		req := &subscriberv1.ImportSubscribersRequest{Data: buf.Bytes()}
		if first {
			req.Format, req.Source = subscriberv1.ImportFormat_IMPORT_FORMAT_JSON_LINES, "bench"
			first = false
		}
		if err := stream.Send(req); err != nil {
			b.Fatal(err)
		}
		buf = bytes.Buffer{}
	}
	enc := json.NewEncoder(&buf)
	for i := range n {
		p := benchPrefs(i)
		if err := enc.Encode(map[string]any{
			"email": fmt.Sprintf("reader%d@example.com", i), "consent_text_version": "bench-v1",
			"consent_time": "2026-06-01T10:00:00Z", "topics": p.GetTopics(), "keywords": p.GetKeywords(),
			"frequency": "daily", "delivery_hour": p.GetDeliveryHour(), "timezone": p.GetTimezone(),
		}); err != nil {
			b.Fatal(err)
		}
		if buf.Len() > 900<<10 {
			flush()
		}
	}
	if buf.Len() > 0 || first {
		flush()
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		b.Fatal(err)
	}
	if resp.GetImportedActive() != int64(n) {
		b.Fatalf("ImportSubscribers = %v, want %d ACTIVE", resp, n)
	}
}

func usedMemory(b *testing.B, srv *redistest.Server) int64 {
	b.Helper()
	n, err := strconv.ParseInt(infoField(b, srv, "memory", "used_memory"), 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// infoSection returns a section of srv's INFO, one field a line.
func infoSection(b *testing.B, srv *redistest.Server, section string) string {
	b.Helper()
	info, err := srv.Client().Info(context.Background(), section).Result()
	if err != nil {
		b.Fatal(err)
	}
	return strings.ReplaceAll(info, "\r\n", "\n")
}

// infoField returns one field of a section of srv's INFO.
func infoField(b *testing.B, srv *redistest.Server, section, field string) string {
	b.Helper()
	info, err := srv.Client().Info(context.Background(), section).Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	b.Fatalf("no %s in INFO %s", field, section)
	return ""
}

// redisCPU is the CPU time srv has used so far (user + system).
func redisCPU(b *testing.B, srv *redistest.Server) time.Duration {
	b.Helper()
	var total time.Duration
	for _, f := range []string{"used_cpu_user", "used_cpu_sys"} {
		v, err := strconv.ParseFloat(infoField(b, srv, "cpu", f), 64)
		if err != nil {
			b.Fatal(err)
		}
		total += time.Duration(v * float64(time.Second))
	}
	return total
}

// processCPU is the CPU time this process (the three services and the
// benchmark) has used so far.
func processCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// labelled runs f with the pprof label svc=name, which every goroutine f
// starts inherits: a CPU profile of the benchmark splits by service
// (go tool pprof -tags, or -tagfocus svc=sender).
func labelled(name string, f func()) {
	pprof.Do(context.Background(), pprof.Labels("svc", name), func(context.Context) { f() })
}

// BenchmarkSlot100k measures one slot of 100,000 ACTIVE subscribers with a
// mix of topics through the digest service over real gRPC, against the REAL
// subscriber service (its Redis slot index) and the REAL sender:
// ListDueSubscribers pages of 500 → never-resend memory (Redis) → picks → one render per
// distinct paper list → PutContent → Enqueue into the REAL sender's Redis
// Streams queue. The sender's SMTP relay is unreachable, so every digest
// stays queued: the sender's Redis memory after the run, less before, over
// the digests queued, is the memory per queued digest message. One op is a
// whole slot of 100,000 subscribers, imported before the timer starts; run
// it with -benchtime 1x (a second op would find them all duplicates).
func BenchmarkSlot100k(b *testing.B) {
	n := benchSubscribers
	if v, err := strconv.Atoi(os.Getenv("BENCH_SUBSCRIBERS")); err == nil && v > 0 {
		n = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	senderRedis := redistest.Start(b, redistest.WithoutAppendOnly())
	senderGRPC, senderHTTP := listen(b), listen(b)
	senderDone := make(chan error, 1)
	go labelled("sender", func() {
		senderDone <- senderd.Run(ctx, envload.MapGetenv(map[string]string{
			"REDIS_URL":                senderRedis.URL(),
			"PAPERROUTE_ADMIN_TOKEN":   adminToken,
			"PAPERROUTE_SERVICE_TOKEN": serviceToken,
			"SENDER_SMTP_ADDR":         "127.0.0.1:1", // nothing listens: digests stay queued
			"SENDER_SMTP_TLS":          "none",
			"SENDER_WORKERS":           "1",
			"SENDER_PARTITIONS":        "4",
			"SENDER_RETRY_AFTER":       "1h",
			"SENDER_RETRY_MAX_DELAY":   "2h",
			"SENDER_CONSUMER":          "bench",
		}, nil), senderd.Deps{Logger: logging.Discard(), GRPCListener: senderGRPC, HTTPListener: senderHTTP})
	})
	defer func() {
		cancel()
		<-senderDone
	}()

	// The sender is up when it answers; a bad configuration ends Run.
	sender := senderv1.NewSenderServiceClient(dial(b, senderGRPC.Addr().String(), adminToken))
	for {
		if _, err := sender.GetQueueStats(ctx, &senderv1.GetQueueStatsRequest{}); err == nil {
			break
		}
		select {
		case err := <-senderDone:
			senderDone <- err // for the deferred wait
			b.Fatalf("sender: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	// The real subscriber service, on its own Redis, with its slot index.
	subRedis := redistest.Start(b, redistest.WithoutAppendOnly())
	subGRPC, subHTTP := listen(b), listen(b)
	subDone := make(chan error, 1)
	go labelled("subscriber", func() {
		subDone <- subscriberd.Run(ctx, envload.MapGetenv(map[string]string{
			"REDIS_URL":                 subRedis.URL(),
			"PAPERROUTE_ADMIN_TOKEN":    adminToken,
			"PAPERROUTE_SERVICE_TOKEN":  serviceToken,
			"SUBSCRIBER_TOKEN_KEYS":     "k1:bXktdGVzdC1rZXktd2l0aC1hdC1sZWFzdC0zMi1ieXRlcw==",
			"SUBSCRIBER_EMAIL_HASH_KEY": "ZW1haWwtaGFzaC1rZXktd2l0aC1hdC1sZWFzdC0zMi1ieXRlcw==",
			"SUBSCRIBER_PUBLIC_URL":     "https://news.paperroute.example",
			"SENDER_GRPC_ADDR":          senderGRPC.Addr().String(),
		}, nil), subscriberd.Deps{Logger: logging.Discard(), GRPCListener: subGRPC, HTTPListener: subHTTP})
	})
	defer func() {
		cancel()
		<-subDone
	}()
	subClient := subscriberv1.NewSubscriberServiceClient(dial(b, subGRPC.Addr().String(), adminToken))
	for {
		if _, err := subClient.ListSubscribers(ctx, &subscriberv1.ListSubscribersRequest{PageSize: 1}); err == nil {
			break
		}
		select {
		case err := <-subDone:
			subDone <- err
			b.Fatalf("subscriber: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	importSubscribers(b, subClient, n)

	var s *service
	labelled("digest", func() {
		s = startWith(b, map[string]string{
			"SENDER_GRPC_ADDR":     senderGRPC.Addr().String(),
			"SUBSCRIBER_GRPC_ADDR": subGRPC.Addr().String(),
		})
	})
	s.importFixture(b)
	slot := time.Date(2026, 6, 12, 6, 0, 0, 0, time.UTC) // 08:00 in Berlin

	// runSlot runs one slot and waits for it, polling every 20 ms, not
	// waitRunFor's 10: on a loaded machine the slot takes a minute, and
	// 6,000 polls would show in the CPU.
	runSlot := func(slot time.Time) *digestv1.DigestRun {
		resp, err := s.client.RunDigest(ctx, &digestv1.RunDigestRequest{Slot: timestamppb.New(slot)})
		if err != nil {
			b.Fatal(err)
		}
		var run *digestv1.DigestRun
		for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
			got, err := s.client.GetDigestRun(ctx, &digestv1.GetDigestRunRequest{RunId: resp.GetRun().GetId()})
			if err != nil {
				b.Fatal(err)
			}
			if run = got.GetRun(); run.GetState() != digestv1.DigestRunState_DIGEST_RUN_STATE_RUNNING {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("run still RUNNING after 5 minutes: %v", run)
			}
		}
		if run.GetState() != digestv1.DigestRunState_DIGEST_RUN_STATE_SUCCEEDED ||
			run.GetQueuedCount()+run.GetDuplicateCount()+run.GetSkippedCount() != int64(n) {
			b.Fatalf("run = %v, want %d queued or skipped", run, n)
		}
		return run
	}
	// BENCH_DAYS=d measures the slot of the d-th day in a row (the days
	// before run untimed): from the second day on each reader's
	// never-resend memory holds the papers sent before, so readers share
	// picks and renders only as far as their histories agree.
	if d, err := strconv.Atoi(os.Getenv("BENCH_DAYS")); err == nil && d > 1 {
		for range d - 1 {
			runSlot(slot)
			slot = slot.AddDate(0, 0, 1)
		}
	}

	var queued, contents, skipped int64
	var elapsed time.Duration
	before := usedMemory(b, senderRedis)
	digBefore := usedMemory(b, s.redis)
	redises := []*redistest.Server{senderRedis, subRedis, s.redis}
	cpuBefore := make([]time.Duration, len(redises))
	for i, r := range redises {
		cpuBefore[i] = redisCPU(b, r)
	}
	for _, r := range redises {
		if err := r.Client().ConfigResetStat(ctx).Err(); err != nil {
			b.Fatal(err)
		}
	}
	procBefore := processCPU(b)
	// BENCH_CPUPROFILE=file profiles the slot only (-cpuprofile would
	// include the import of the subscribers).
	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		run := runSlot(slot)
		elapsed += time.Since(start)
		queued += run.GetQueuedCount()
		contents += run.GetContentCount()
		skipped += run.GetSkippedCount()
	}
	b.StopTimer()
	// CPU seconds per 100,000 subscribers: the Go process (digest,
	// subscriber and sender; a -cpuprofile with -tags splits it) and each
	// Redis. They survive a loaded machine better than the wall time.
	per100k := func(d time.Duration) float64 { return d.Seconds() * 100_000 / float64(queued) }
	b.ReportMetric(per100k(processCPU(b)-procBefore), "go-cpu-s/100k")
	for i, name := range []string{"sender", "subscriber", "digest"} {
		b.ReportMetric(per100k(redisCPU(b, redises[i])-cpuBefore[i]), name+"-redis-cpu-s/100k")
	}
	for i, name := range []string{"sender", "subscriber", "digest"} {
		b.Logf("%s Redis commands during the slot:\n%s", name, infoSection(b, redises[i], "commandstats"))
	}
	after := usedMemory(b, senderRedis)
	digAfter := usedMemory(b, s.redis)
	b.ReportMetric(float64(queued)/elapsed.Seconds(), "subscribers/s")
	b.ReportMetric(float64(after-before)/float64(queued), "sender-redis-B/msg")
	b.ReportMetric(float64(digAfter-digBefore)/float64(queued), "digest-redis-B/subscriber")
	b.ReportMetric(float64(contents)/float64(b.N), "renders/slot")
	b.ReportMetric(float64(skipped)/float64(b.N), "skipped/slot")
}
