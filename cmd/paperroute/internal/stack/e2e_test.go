package stack_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/cmd/paperroute/internal/stack"
	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/platform/grpcclient"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/mailcatcher"
	"github.com/paperroute/paperroute/platform/redistest"
)

const (
	adminToken   = "e2e-admin-token"
	serviceToken = "e2e-service-token"
	// publicURL is where links in mail point, as in production (https). The
	// test sends the requests to the subscriber's HTTP listener instead.
	publicURL = "https://news.paperroute.test"
)

// env is a complete configuration for the three services on free ports.
func env(redisURL, smtpAddr string) func(string) string {
	return envload.MapGetenv(map[string]string{
		"REDIS_URL":                 redisURL,
		"PAPERROUTE_ADMIN_TOKEN":    adminToken,
		"PAPERROUTE_SERVICE_TOKEN":  serviceToken,
		"SUBSCRIBER_TOKEN_KEYS":     "k1:bXktdGVzdC1rZXktd2l0aC1hdC1sZWFzdC0zMi1ieXRlcw==",
		"SUBSCRIBER_EMAIL_HASH_KEY": "ZW1haWwtaGFzaC1rZXktd2l0aC1hdC1sZWFzdC0zMi1ieXRlcw==",
		"SUBSCRIBER_PUBLIC_URL":     publicURL,
		"SUBSCRIBER_GRPC_ADDR":      "127.0.0.1:0",
		"SUBSCRIBER_HTTP_ADDR":      "127.0.0.1:0",
		"DIGEST_GRPC_ADDR":          "127.0.0.1:0",
		"DIGEST_HTTP_ADDR":          "127.0.0.1:0",
		"SENDER_GRPC_ADDR":          "127.0.0.1:0",
		"SENDER_HTTP_ADDR":          "127.0.0.1:0",
		"SENDER_SMTP_ADDR":          smtpAddr,
		"SENDER_SMTP_TLS":           "none",
		"SENDER_RETRY_AFTER":        "500ms",
		"SHUTDOWN_GRACE":            "5s",
		"DIGEST_POSTAL_ADDRESS":     "paperroute e2e, 1 Test Road, Testtown",
		"DIGEST_SOURCES":            "off", // no test reaches the internet
		"DIGEST_SCHEDULER":          "false",
	}, nil)
}

type world struct {
	t       testing.TB
	addrs   stack.Addrs
	catcher *mailcatcher.Server
	sub     subscriberv1.SubscriberServiceClient
	dig     digestv1.DigestServiceClient
	snd     senderv1.SenderServiceClient
	conns   map[string]*grpc.ClientConn
	http    *http.Client
}

func startWorld(t testing.TB) *world {
	t.Helper()
	return startWorldWith(t, worldOptions{})
}

// worldOptions change startWorld's set-up.
type worldOptions struct {
	// redisURL is the Redis the services use; empty starts a plain one.
	redisURL string
	// extraEnv is added to env's configuration, overriding it.
	extraEnv map[string]string
	// clientTLS is the TLS of the test's own gRPC clients (nil: plaintext).
	clientTLS *tls.Config
	// tracerProvider, when set, traces all three services (Stack.TraceWith).
	tracerProvider trace.TracerProvider
}

func startWorldWith(t testing.TB, opts worldOptions) *world {
	t.Helper()
	if opts.redisURL == "" {
		opts.redisURL = redistest.Start(t).URL()
	}
	catcher, err := mailcatcher.Start("127.0.0.1:0", mailcatcher.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { catcher.Close() })
	st, err := stack.Listen(envload.MapGetenv(opts.extraEnv, env(opts.redisURL, catcher.Addr())))
	if err != nil {
		t.Fatal(err)
	}
	if opts.tracerProvider != nil {
		st.TraceWith(opts.tracerProvider)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx, logging.Discard()) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("stack did not shut down cleanly: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("stack did not shut down within 30s")
		}
	})
	w := &world{t: t, addrs: st.Addrs(), catcher: catcher, conns: map[string]*grpc.ClientConn{},
		http: &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}}
	for name, addr := range map[string]string{"subscriber": w.addrs.SubscriberGRPC, "digest": w.addrs.DigestGRPC, "sender": w.addrs.SenderGRPC} {
		conn, err := grpcclient.New(addr, adminToken, grpcclient.WithTLS(opts.clientTLS))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		w.conns[name] = conn
	}
	w.sub = subscriberv1.NewSubscriberServiceClient(w.conns["subscriber"])
	w.dig = digestv1.NewDigestServiceClient(w.conns["digest"])
	w.snd = senderv1.NewSenderServiceClient(w.conns["sender"])
	return w
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// local turns a public link into the same request to the local listener.
func (w *world) local(link string) string {
	u, err := url.Parse(link)
	if err != nil {
		w.t.Fatalf("bad link %q: %v", link, err)
	}
	if got := u.Scheme + "://" + u.Host; got != publicURL {
		w.t.Fatalf("link %q does not start with the public URL %s", link, publicURL)
	}
	u.Scheme, u.Host = "http", w.addrs.SubscriberHTTP
	return u.String()
}

func (w *world) state(ctx context.Context, email string) subscriberv1.SubscriberState {
	w.t.Helper()
	r, err := w.sub.GetSubscriber(ctx, &subscriberv1.GetSubscriberRequest{Email: email})
	if err != nil {
		w.t.Fatalf("GetSubscriber(%s): %v", email, err)
	}
	return r.GetSubscriber().GetState()
}

// subscribeAndConfirm walks the double opt-in through the real mail and
// link pages.
func (w *world) subscribeAndConfirm(ctx context.Context, email string) {
	t := w.t
	t.Helper()
	// Due when the test runs the digest: subscribers are listed by their
	// local delivery hour.
	hour := proto.Int32(int32(time.Now().UTC().Hour()))
	if _, err := w.sub.Subscribe(ctx, &subscriberv1.SubscribeRequest{Email: email, ConsentTextVersion: "v1", ClientIp: "203.0.113.7", UserAgent: "e2e", DeliveryHour: hour, Timezone: "UTC"}); err != nil {
		t.Fatalf("Subscribe(%s): %v", email, err)
	}
	m, err := w.catcher.WaitFor(ctx, mailcatcher.To(email))
	if err != nil {
		t.Fatalf("no confirmation mail for %s: %v", email, err)
	}
	p, err := mailcatcher.Parse(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	link := regexp.MustCompile(regexp.QuoteMeta(publicURL) + `/confirm\?token=[A-Za-z0-9_.\-]+`).FindString(p.Text)
	if link == "" {
		t.Fatalf("confirmation mail has no confirm link:\n%s", p.Text)
	}

	// GET shows a page with a form and changes nothing.
	resp, err := w.http.Get(w.local(link))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(string(body)), `method="post"`) {
		t.Fatalf("GET confirm link = %d, want 200 with a POST form:\n%s", resp.StatusCode, body)
	}
	if got := w.state(ctx, email); got != subscriberv1.SubscriberState_SUBSCRIBER_STATE_PENDING {
		t.Fatalf("after GET of the confirm link state = %v, want PENDING (GET must not change state)", got)
	}

	// POST confirms.
	token := link[strings.Index(link, "token=")+len("token="):]
	resp, err = w.http.PostForm("http://"+w.addrs.SubscriberHTTP+"/confirm", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /confirm = %d, want 200", resp.StatusCode)
	}
	if got := w.state(ctx, email); got != subscriberv1.SubscriberState_SUBSCRIBER_STATE_ACTIVE {
		t.Fatalf("after POST /confirm state = %v, want ACTIVE", got)
	}
}

func (w *world) runDigest(ctx context.Context, edition string) *digestv1.DigestRun {
	t := w.t
	t.Helper()
	r, err := w.dig.RunDigest(ctx, &digestv1.RunDigestRequest{Edition: edition})
	if err != nil {
		t.Fatalf("RunDigest(%s): %v", edition, err)
	}
	for {
		g, err := w.dig.GetDigestRun(ctx, &digestv1.GetDigestRunRequest{RunId: r.GetRun().GetId()})
		if err != nil {
			t.Fatalf("GetDigestRun: %v", err)
		}
		switch g.GetRun().GetState() {
		case digestv1.DigestRunState_DIGEST_RUN_STATE_SUCCEEDED:
			return g.GetRun()
		case digestv1.DigestRunState_DIGEST_RUN_STATE_FAILED:
			t.Fatalf("digest run failed: %s", g.GetRun().GetError())
		}
		select {
		case <-ctx.Done():
			t.Fatalf("digest run %s still %v", edition, g.GetRun().GetState())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// digestsTo counts the digest mails (those with List-Unsubscribe) to rcpt.
func (w *world) digestsTo(rcpt string) []mailcatcher.Message {
	var out []mailcatcher.Message
	for _, m := range w.catcher.Messages() {
		if mailcatcher.To(rcpt)(m) && strings.Contains(string(m.Data), "List-Unsubscribe-Post:") {
			out = append(out, m)
		}
	}
	return out
}

func (w *world) waitDigests(ctx context.Context, rcpt string, n int) []mailcatcher.Message {
	w.t.Helper()
	for {
		if got := w.digestsTo(rcpt); len(got) >= n {
			return got
		}
		select {
		case <-ctx.Done():
			w.t.Fatalf("%s has %d digest mails, want %d", rcpt, len(w.digestsTo(rcpt)), n)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (w *world) bulkStats(ctx context.Context) *senderv1.LaneStats {
	w.t.Helper()
	r, err := w.snd.GetQueueStats(ctx, &senderv1.GetQueueStatsRequest{})
	if err != nil {
		w.t.Fatalf("GetQueueStats: %v", err)
	}
	for _, l := range r.GetLanes() {
		if l.GetLane() == senderv1.Lane_LANE_BULK {
			return l
		}
	}
	w.t.Fatal("GetQueueStats has no bulk lane")
	return nil
}

// TestWalkingSkeleton walks the whole product path across the three
// services: subscribe, confirm by link, import papers, send a digest once,
// unsubscribe with one click, and get nothing more.
func TestWalkingSkeleton(t *testing.T) {
	w := startWorld(t)
	ctx := ctxT(t)
	const reader, witness = "reader@example.org", "witness@example.net"

	w.subscribeAndConfirm(ctx, reader)

	papers, err := os.ReadFile("../devmode/sample/hf-daily-papers-2026-06-12.json")
	if err != nil {
		t.Fatal(err)
	}
	imp, err := w.dig.ImportPapers(ctx, &digestv1.ImportPapersRequest{Format: digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, Data: papers})
	if err != nil {
		t.Fatalf("ImportPapers: %v", err)
	}
	if got := len(imp.GetPaperIds()); got != 30 {
		t.Fatalf("imported %d papers, want 30", got)
	}

	run := w.runDigest(ctx, "2026-06-12")
	if run.GetQueuedCount() != 1 || run.GetDueCount() != 1 {
		t.Fatalf("first run: due %d queued %d, want 1 and 1", run.GetDueCount(), run.GetQueuedCount())
	}
	mail := w.waitDigests(ctx, reader, 1)[0]
	p, err := mailcatcher.Parse(mail.Data)
	if err != nil {
		t.Fatal(err)
	}
	const topTitle = "EvoArena: Tracking Memory Evolution" // the text part wraps long titles
	if !strings.Contains(p.Text, topTitle) || !strings.Contains(p.HTML, topTitle) {
		t.Errorf("digest parts do not both carry the top paper %q", topTitle)
	}
	if got := strings.Join(p.PartOrder, ","); got != "text/plain,text/html" {
		t.Errorf("digest parts = %s, want text/plain then text/html", got)
	}
	if view := "http://" + w.addrs.DigestHTTP + "/editions/2026-06-12"; !strings.Contains(p.HTML, `href="`+view+`"`) || !strings.Contains(p.Text, view) {
		t.Errorf("digest has no view-in-browser link to %s", view)
	}
	if !strings.Contains(p.HTML, "https://huggingface.co/papers/2606.13681") {
		t.Error("digest HTML has no link to the top paper's page")
	}
	if got := p.Header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post = %q", got)
	}
	lu := p.Header.Get("List-Unsubscribe")
	unsubURL := strings.TrimSuffix(strings.TrimPrefix(lu, "<"), ">")
	if !strings.HasPrefix(unsubURL, publicURL+"/unsubscribe?token=") {
		t.Fatalf("List-Unsubscribe = %q, want <%s/unsubscribe?token=…>", lu, publicURL)
	}
	if !strings.Contains(p.Text, unsubURL) {
		t.Error("the text part has no visible unsubscribe link")
	}

	// A second run of the same edition sends nothing new. A witness who
	// subscribed in between gets theirs, which proves the run went through.
	w.subscribeAndConfirm(ctx, witness)
	again := w.runDigest(ctx, "2026-06-12")
	if again.GetDuplicateCount() != 1 || again.GetQueuedCount() != 1 {
		t.Fatalf("second run: queued %d duplicate %d, want 1 (witness) and 1 (reader)", again.GetQueuedCount(), again.GetDuplicateCount())
	}
	w.waitDigests(ctx, witness, 1)
	if got := len(w.digestsTo(reader)); got != 1 {
		t.Fatalf("reader has %d digests for one edition, want 1", got)
	}
	if s := w.bulkStats(ctx); s.GetSentCount() != 2 || s.GetWaitingCount()+s.GetPendingCount() != 0 {
		t.Fatalf("bulk lane: sent %d waiting %d pending %d, want 2 sent and nothing left", s.GetSentCount(), s.GetWaitingCount(), s.GetPendingCount())
	}

	// RFC 8058 one-click unsubscribe: POST, 200, no redirect.
	resp, err := w.http.Post(w.local(unsubURL), "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("one-click unsubscribe = %d, want 200 (no redirect)", resp.StatusCode)
	}
	if got := w.state(ctx, reader); got != subscriberv1.SubscriberState_SUBSCRIBER_STATE_UNSUBSCRIBED {
		t.Fatalf("after one-click unsubscribe state = %v, want UNSUBSCRIBED", got)
	}

	// The next edition goes to the witness only.
	next := w.runDigest(ctx, "2026-06-13")
	if next.GetDueCount() != 1 || next.GetQueuedCount() != 1 {
		t.Fatalf("next edition: due %d queued %d, want 1 and 1 (the witness only)", next.GetDueCount(), next.GetQueuedCount())
	}
	w.waitDigests(ctx, witness, 2)
	if got := len(w.digestsTo(reader)); got != 1 {
		t.Fatalf("unsubscribed reader got %d digests in all, want only the first", got)
	}
	if s := w.bulkStats(ctx); s.GetSentCount() != 3 {
		t.Fatalf("bulk lane sent %d, want 3", s.GetSentCount())
	}
}

// TestServicesListThemselves checks what `grpcurl -plaintext <addr> list`
// shows: the service, health and reflection, with no credentials.
func TestServicesListThemselves(t *testing.T) {
	w := startWorld(t)
	ctx := ctxT(t)
	for addr, want := range map[string]string{
		w.addrs.SubscriberGRPC: "paperroute.subscriber.v1.SubscriberService",
		w.addrs.DigestGRPC:     "paperroute.digest.v1.DigestService",
		w.addrs.SenderGRPC:     "paperroute.sender.v1.SenderService",
	} {
		t.Run(want, func(t *testing.T) {
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
				t.Fatal(err)
			}
			r, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range r.GetListServicesResponse().GetService() {
				got = append(got, s.GetName())
			}
			for _, wantName := range []string{want, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
				if !strings.Contains(strings.Join(got, " "), wantName) {
					t.Errorf("list = %v, missing %s", got, wantName)
				}
			}
		})
	}
}
