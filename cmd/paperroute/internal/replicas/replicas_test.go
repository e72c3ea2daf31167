package replicas_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/cmd/paperroute/internal/devmode/sample"
	"github.com/paperroute/paperroute/platform/grpcclient"
	"github.com/paperroute/paperroute/platform/mailcatcher"
	"github.com/paperroute/paperroute/platform/redistest"
)

const (
	adminToken = "replicas-admin-token"
	// readers is how many ACTIVE subscribers are due in the slot.
	readers = 200
	// rateLimit is SENDER_RATE_LIMIT (messages/s for all senders together);
	// redis_rate's GCRA lets a burst of as many through at once.
	rateLimit = 25
	// workers is SENDER_WORKERS: a kill can cost at most one extra copy per
	// worker, however many SMTP connections they share (docs/delivery.md).
	workers = 4

	keySchedLease  = "dig:sched:lease"
	keySchedCursor = "dig:sched:cursor"
	keyPollerLease = "dig:poller:lease"
)

// TestSeveralReplicas runs 2 subscriber, 2 digest and 3 sender processes on
// one Redis with the digest scheduler (1 s tick) and the source poller on in
// both digest replicas, makes 200 readers due in one slot, kills the digest
// replica that holds both leases, one sender and one subscriber with
// SIGKILL while the digests are being delivered (the subscriber is started
// again on its addresses, as a restarted pod), and checks:
//
//   - every due reader got exactly one digest (counted at the SMTP catcher),
//     except at most one extra copy per delivery worker of the killed sender
//     for a message it had sent before it died (the documented accident);
//   - one poller round across both replicas (the source server saw today and
//     yesterday once; one replica reports digest_poller_leader 1);
//   - one scheduled run per slot across both replicas, by the lease holder;
//     after the kill the other replica takes the lease over, ticks, and runs
//     nothing again;
//   - SENDER_RATE_LIMIT held across the three senders, measured at the
//     catcher's receive times;
//   - SUBSCRIBER_LIMIT_PER_IP held across the two subscribers: one client
//     address gets 2 sign-ups in all, not 2 per replica, and is still
//     refused by the restarted replica (the limit lives in Redis).
func TestSeveralReplicas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Second)
	defer cancel()
	began := time.Now()
	logs := &syncBuffer{}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\n\nservice logs:\n%s", append(args, logs.tail())...)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-ctx.Done():
				fail("timed out waiting for %s", what)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}

	rs := redistest.Start(t, redistest.WithAppendFsync("always"))
	rdb := rs.Client()
	catcher, err := mailcatcher.Start("127.0.0.1:0", mailcatcher.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { catcher.Close() })

	// The Hugging Face daily papers API, served from the bundled sample:
	// yesterday's list is the sample re-dated to yesterday (so its papers
	// are in every slot's window today), today's list is still empty.
	now := time.Now().UTC()
	yesterday := now.AddDate(0, 0, -1).Format(time.DateOnly)
	papers, err := sample.PapersFeaturedOn(now.AddDate(0, 0, -1))
	if err != nil {
		t.Fatal(err)
	}
	var srcMu sync.Mutex
	srcRequests := map[string]int{}
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		day := r.URL.Query().Get("date")
		srcMu.Lock()
		srcRequests[day]++
		srcMu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if day == yesterday {
			_, _ = w.Write(papers)
			return
		}
		_, _ = w.Write([]byte("[]"))
	}))
	t.Cleanup(src.Close)
	sourceRequests := func() int {
		srcMu.Lock()
		defer srcMu.Unlock()
		n := 0
		for _, c := range srcRequests {
			n += c
		}
		return n
	}

	subs := []*process{bind(t, "subscriber-1"), bind(t, "subscriber-2")}
	digs := []*process{bind(t, "digest-1"), bind(t, "digest-2")}
	snds := []*process{bind(t, "sender-1"), bind(t, "sender-2"), bind(t, "sender-3")}
	common := map[string]string{
		"REDIS_URL":                 rs.URL(),
		"PAPERROUTE_ADMIN_TOKEN":    adminToken,
		"PAPERROUTE_SERVICE_TOKEN":  "replicas-service-token",
		"SUBSCRIBER_TOKEN_KEYS":     "k1:bXktdGVzdC1rZXktd2l0aC1hdC1sZWFzdC0zMi1ieXRlcw==",
		"SUBSCRIBER_EMAIL_HASH_KEY": "ZW1haWwtaGFzaC1rZXktd2l0aC1hdC1sZWFzdC0zMi1ieXRlcw==",
		"SUBSCRIBER_PUBLIC_URL":     "https://news.paperroute.test",
		"SHUTDOWN_GRACE":            "2s",
	}
	with := func(extra map[string]string) map[string]string {
		env := map[string]string{}
		for k, v := range common {
			env[k] = v
		}
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	// Each replica calls "its" replica of a peer, as a Kubernetes Service
	// would spread connections.
	for i, p := range snds {
		p.start(t, "sender", with(map[string]string{
			"SUBSCRIBER_GRPC_ADDR":   subs[i%len(subs)].grpcAddr,
			"SENDER_SMTP_ADDR":       catcher.Addr(),
			"SENDER_SMTP_TLS":        "none",
			"SENDER_PARTITIONS":      "4",
			"SENDER_WORKERS":         fmt.Sprint(workers),
			"SENDER_RATE_LIMIT":      fmt.Sprint(rateLimit),
			"SENDER_SMTP_TIMEOUT":    "5s",
			"SENDER_LEASE":           "6s",
			"SENDER_RETRY_AFTER":     "300ms",
			"SENDER_RETRY_MAX_DELAY": "1s",
			"SENDER_CONSUMER":        p.name,
		}), logs)
	}
	subEnv := func(i int) map[string]string {
		return with(map[string]string{
			"SENDER_GRPC_ADDR":        snds[i].grpcAddr,
			"SUBSCRIBER_LIMIT_PER_IP": fmt.Sprintf("%d/1h", limitPerIP),
		})
	}
	for i, p := range subs {
		p.start(t, "subscriber", subEnv(i), logs)
	}
	for _, p := range append(append([]*process{}, subs...), snds...) {
		waitFor(p.name+" healthy", func() bool { return p.healthy(ctx) })
	}
	// The digests: catcher's messages but the abuser's confirmation mails.
	digests := func() []mailcatcher.Message {
		var out []mailcatcher.Message
		for _, m := range catcher.Messages() {
			if !slices.ContainsFunc(m.To, func(to string) bool { return slices.Contains(limitAddrs, to) }) {
				out = append(out, m)
			}
		}
		return out
	}

	// The Subscribe abuse limit is one for both subscriber replicas (GCRA
	// in Redis): the abuser's first sign-up through each replica passes,
	// a second through subscriber-2 is over the limit of 2 although that
	// replica has seen only one (and it stays so after subscriber-1 is
	// killed and restarted, below).
	if err := signUpAbuser(ctx, t, subs[0], subs[1]); err != nil {
		fail("%v", err)
	}
	waitFor("the confirmation mails of the abuser's accepted sign-ups", func() bool {
		return len(catcher.Messages())-len(digests()) == limitPerIP
	})

	// readers ACTIVE through ImportSubscribers with consent evidence, half
	// through each subscriber replica, all delivering at this UTC hour: due
	// in the slot hh:00.
	dueSlot := now.Truncate(time.Hour)
	emails := make([]string, readers)
	for i := range emails {
		emails[i] = fmt.Sprintf("reader-%03d@example.org", i)
	}
	for i, p := range subs {
		var csv strings.Builder
		csv.WriteString("email,consent_text_version,consent_time,delivery_hour,timezone\n")
		for j := i; j < readers; j += len(subs) {
			fmt.Fprintf(&csv, "%s,v1,2026-01-05T10:00:00Z,%d,UTC\n", emails[j], dueSlot.Hour())
		}
		res := importCSV(ctx, t, p, csv.String())
		if want := int64((readers + len(subs) - 1 - i) / len(subs)); res.GetImportedActive() != want || res.GetRejected() != 0 {
			fail("import through %s: %v, want %d active and none rejected", p.name, res, want)
		}
	}

	// The scheduler's cursor is put a day ahead, so the digest replicas run
	// no slot until the papers are in (even if a slot begins meanwhile);
	// below it is set back before the due slot, as after a restart, and the
	// due slot is caught up (docs/scheduling.md).
	if err := rdb.Set(ctx, keySchedCursor, now.Truncate(15*time.Minute).Add(24*time.Hour).Unix(), 0).Err(); err != nil {
		t.Fatal(err)
	}
	digestEnv := func(i int) map[string]string {
		return with(map[string]string{
			"SUBSCRIBER_GRPC_ADDR":  subs[i].grpcAddr,
			"SENDER_GRPC_ADDR":      snds[i].grpcAddr,
			"DIGEST_POSTAL_ADDRESS": "paperroute replicas test, 1 Test Road, Testtown",
			"DIGEST_SCHEDULER":      "true",
			"DIGEST_SCHEDULER_TICK": "1s",
			"DIGEST_SOURCES":        "hf:" + src.URL,
			"DIGEST_POLL_INTERVAL":  "1m",
		})
	}
	// digest-1 starts first and takes both leases; digest-2 then runs beside
	// it with the same configuration, ticking and polling too.
	digs[0].start(t, "digest", digestEnv(0), logs)
	waitFor("digest-1 to hold the scheduler lease and finish a poll", func() bool {
		m, err := digs[0].metrics(ctx)
		return err == nil && m["digest_poller_leader"] == 1 && sourceRequests() == 2 &&
			sum(m, "digest_poller_papers_total") > 0 && rdb.Exists(ctx, keySchedLease).Val() == 1
	})
	owner1 := rdb.Get(ctx, keySchedLease).Val()
	pollHolder := rdb.Get(ctx, keyPollerLease).Val()
	digs[1].start(t, "digest", digestEnv(1), logs)
	// Runs before each process's own clean-up: all stop at once, not one
	// grace period after another.
	t.Cleanup(func() {
		for _, p := range append(append(append([]*process{}, subs...), digs...), snds...) {
			p.terminate()
		}
	})
	waitFor("digest-2 healthy", func() bool { return digs[1].healthy(ctx) })

	// Who holds the scheduler lease, sampled from here on.
	var holdersMu sync.Mutex
	var holders []string
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for sampleCtx.Err() == nil {
			if h, err := rdb.Get(sampleCtx, keySchedLease).Result(); err == nil {
				holdersMu.Lock()
				if len(holders) == 0 || holders[len(holders)-1] != h {
					holders = append(holders, h)
				}
				holdersMu.Unlock()
			}
			time.Sleep(5 * time.Millisecond) // sampling rate, not a wait for a condition
		}
	}()

	// Catch up from the due slot.
	if err := rdb.Set(ctx, keySchedCursor, dueSlot.Add(-15*time.Minute).Unix(), 0).Err(); err != nil {
		t.Fatal(err)
	}
	runStart := time.Now()

	// Mid-run: a quarter delivered, kill the digest that holds both leases
	// and one sender.
	waitFor("a quarter of the digests delivered", func() bool { return len(digests()) >= readers/4 })
	killedAt := time.Now()
	digs[0].kill(t)
	snds[1].kill(t)
	subs[0].kill(t)
	t.Logf("killed digest-1 (scheduler and poller leader), sender-2 and subscriber-1 after %d of %d digests", len(digests()), readers)
	// subscriber-1 comes back on its addresses, as a restarted pod would,
	// while the digests are delivered; the abuser is still over the limit.
	sub1 := rebind(t, subs[0])
	sub1.start(t, "subscriber", subEnv(0), logs)
	subs[0] = sub1
	waitFor(sub1.name+" healthy", func() bool { return sub1.healthy(ctx) })
	if got := subscribeFromAbuser(ctx, t, sub1, limitAddrs[2]); got != codes.ResourceExhausted {
		fail("Subscribe(%s) through the restarted %s = %v, want ResourceExhausted: the limit must outlive a replica", limitAddrs[2], sub1.name, got)
	}

	got := func() map[string]int {
		out := map[string]int{}
		for _, m := range digests() {
			for _, to := range m.To {
				out[to]++
			}
		}
		return out
	}
	waitFor("every reader's digest", func() bool { return len(got()) == readers })
	delivered := time.Now()

	// The rate limit, shared by the three senders.
	times, err := checkRate(digests(), rateLimit)
	if err != nil {
		fail("%v", err)
	}
	span := times[len(times)-1].Sub(times[0])
	t.Logf("%d digests in %v: %.1f/s against SENDER_RATE_LIMIT=%d across 3 senders", len(times), span.Round(time.Millisecond), float64(len(times)-1)/span.Seconds(), rateLimit)
	for _, p := range []*process{snds[0], snds[2]} {
		m, err := p.metrics(ctx)
		if err != nil {
			fail("%v", err)
		}
		if sum(m, "sender_messages_sent_total") == 0 {
			fail("%s sent nothing: the senders did not share the queue", p.name)
		}
	}

	// The scheduler: one run per slot from the due slot to the current one,
	// all succeeded; the due slot's queued every reader.
	dig2 := digestClient(t, digs[1])
	runsBySlot := func() map[time.Time][]*digestv1.DigestRun {
		res, err := dig2.ListDigestRuns(ctx, &digestv1.ListDigestRunsRequest{PageSize: 500})
		if err != nil {
			fail("ListDigestRuns: %v", err)
		}
		out := map[time.Time][]*digestv1.DigestRun{}
		for _, r := range res.GetRuns() {
			if r.GetSlot() != nil {
				out[r.GetSlot().AsTime()] = append(out[r.GetSlot().AsTime()], r)
			}
		}
		return out
	}
	lastSlot := time.Now().UTC().Truncate(15 * time.Minute)
	waitFor("the scheduler to reach the current slot", func() bool {
		c, err := rdb.Get(ctx, keySchedCursor).Int64()
		return err == nil && !time.Unix(c, 0).Before(lastSlot)
	})
	// One SUCCEEDED run per slot. A slot the killed replica was running when
	// it died keeps that run (RUNNING until its heartbeat is 2 minutes old,
	// then FAILED) and is run once more by the replica that takes over. A
	// slot that began meanwhile has at most its one run.
	runs := runsBySlot()
	nowSlot := time.Now().UTC().Truncate(15 * time.Minute)
	for slot, rs := range runs {
		if slot.Before(dueSlot) || slot.After(nowSlot) {
			fail("a run for slot %s, outside the slots %s..%s: %v", slot.Format(time.TimeOnly), dueSlot.Format(time.TimeOnly), nowSlot.Format(time.TimeOnly), rs)
		}
	}
	for slot := dueSlot; !slot.After(nowSlot); slot = slot.Add(15 * time.Minute) {
		succeeded := 0
		for _, r := range runs[slot] {
			switch {
			case r.GetState() == digestv1.DigestRunState_DIGEST_RUN_STATE_SUCCEEDED:
				succeeded++
			case r.GetCreateTime().AsTime().Before(killedAt) &&
				(r.GetState() == digestv1.DigestRunState_DIGEST_RUN_STATE_RUNNING || r.GetState() == digestv1.DigestRunState_DIGEST_RUN_STATE_FAILED):
				t.Logf("slot %s: run %s interrupted by the kill, run again", slot.Format(time.TimeOnly), r.GetId())
			default:
				fail("slot %s: unexpected run %v", slot.Format(time.TimeOnly), r)
			}
		}
		if succeeded > 1 || (succeeded == 0 && !slot.After(lastSlot)) {
			fail("slot %s has %d SUCCEEDED runs (%v), want exactly one", slot.Format(time.TimeOnly), succeeded, runs[slot])
		}
	}
	for _, r := range runs[dueSlot] {
		if r.GetState() == digestv1.DigestRunState_DIGEST_RUN_STATE_SUCCEEDED &&
			(r.GetDueCount() != readers || r.GetQueuedCount()+r.GetDuplicateCount() != readers || r.GetFailedCount() != 0) {
			fail("due slot's run: due %d queued %d duplicate %d failed %d, want %d, %[5]d queued or duplicate, 0 failed",
				r.GetDueCount(), r.GetQueuedCount(), r.GetDuplicateCount(), r.GetFailedCount(), readers)
		}
	}

	// The other digest replica takes the scheduler lease over when the dead
	// one's expires (3 ticks + 1 minute), ticks, and runs nothing again: the
	// cursor already passed every slot.
	waitFor("digest-2 to take the scheduler lease over", func() bool {
		h, err := rdb.Get(ctx, keySchedLease).Result()
		return err == nil && h != owner1
	})
	owner2 := rdb.Get(ctx, keySchedLease).Val()
	tookOver := time.Now()
	// Two renewals of the lease (its TTL going up again) are two ticks of
	// digest-2 as the scheduler.
	for renewals, last := 0, time.Duration(0); renewals < 2; {
		ttl := rdb.PTTL(ctx, keySchedLease).Val()
		if last > 0 && ttl > last {
			renewals++
		}
		last = ttl
		if ctx.Err() != nil {
			fail("digest-2 did not renew the scheduler lease twice")
		}
		time.Sleep(50 * time.Millisecond) // sampling the TTL, not a wait for a condition
	}
	if h := rdb.Get(ctx, keySchedLease).Val(); h != owner2 {
		fail("scheduler lease moved again to %q after digest-2 took it", h)
	}
	stopSampling()
	<-sampled
	holdersMu.Lock()
	if len(holders) != 2 || holders[0] != owner1 || holders[1] != owner2 {
		fail("scheduler lease holders over the run: %q, want %q then %q", holders, owner1, owner2)
	}
	holdersMu.Unlock()
	// No slot that had succeeded was run again after the checks above; a
	// slot that began meanwhile ran at most once.
	succeededIn := func(rs []*digestv1.DigestRun) int {
		n := 0
		for _, r := range rs {
			if r.GetState() == digestv1.DigestRunState_DIGEST_RUN_STATE_SUCCEEDED {
				n++
			}
		}
		return n
	}
	for slot, rs := range runsBySlot() {
		before := runs[slot]
		if succeededIn(rs) > 1 || (len(rs) > len(before) && succeededIn(before) > 0) || slot.Before(dueSlot) {
			fail("after the take-over slot %s has runs %v, before %v", slot.Format(time.TimeOnly), rs, before)
		}
	}

	// Every reader exactly one digest, but for what the sender kill explains.
	extra, err := checkOneEach(digests(), emails, killedAt, workers)
	if err != nil {
		fail("%v", err)
	}
	for i, addr := range limitAddrs {
		want := 0
		if i < limitPerIP {
			want = 1
		}
		if got := countTo(catcher.Messages(), addr); got != want {
			fail("%s got %d mails, want %d (a confirmation per accepted sign-up)", addr, got, want)
		}
	}

	// The poller: one round across both replicas in the whole run (the next
	// is due a minute after the first, DIGEST_POLL_INTERVAL) — digest-2
	// polled nothing although it started its poller too.
	m2, err := digs[1].metrics(ctx)
	if err != nil {
		fail("%v", err)
	}
	if n := sourceRequests(); n != 2 || sum(m2, "digest_poller_requests_total") != 0 || m2["digest_poller_leader"] != 0 {
		fail("poller: %d source requests (want 2: today and yesterday once), digest-2 requests %v leader %v (want 0, 0)",
			n, sum(m2, "digest_poller_requests_total"), m2["digest_poller_leader"])
	}
	if pollHolder == "" {
		fail("no poller lease was held")
	}
	t.Logf("set-up %v, slot run to last digest %v, scheduler take-over after the kill %v, %d extra copies after the sender kill; total %v",
		runStart.Sub(began).Round(time.Millisecond), delivered.Sub(runStart).Round(time.Millisecond),
		tookOver.Sub(killedAt).Round(time.Millisecond), len(extra), time.Since(began).Round(time.Millisecond))
}

// importCSV streams csv to a subscriber replica's ImportSubscribers.
func importCSV(ctx context.Context, t *testing.T, p *process, csv string) *subscriberv1.ImportSubscribersResponse {
	t.Helper()
	conn := dial(t, p)
	stream, err := subscriberv1.NewSubscriberServiceClient(conn).ImportSubscribers(ctx)
	if err != nil {
		t.Fatalf("ImportSubscribers on %s: %v", p.name, err)
	}
	if err := stream.Send(&subscriberv1.ImportSubscribersRequest{
		Format: subscriberv1.ImportFormat_IMPORT_FORMAT_CSV, Source: "replicas-test", Data: []byte(csv),
	}); err != nil {
		t.Fatalf("ImportSubscribers on %s: %v", p.name, err)
	}
	res, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatalf("ImportSubscribers on %s: %v", p.name, err)
	}
	return res
}

func digestClient(t *testing.T, p *process) digestv1.DigestServiceClient {
	return digestv1.NewDigestServiceClient(dial(t, p))
}

func dial(t *testing.T, p *process) *grpc.ClientConn {
	t.Helper()
	conn, err := grpcclient.New(p.grpcAddr, adminToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
