package devmode

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/mailcatcher"

	"github.com/paperroute/paperroute/cmd/paperroute/internal/devmode/sample"
)

// DemoEmail is the demo subscriber's address.
const DemoEmail = "demo@example.com"

var confirmLink = regexp.MustCompile(`/confirm\?token=([A-Za-z0-9_.\-]+)`)

// clients are the operator's gRPC clients (admin token attached).
type clients struct {
	subscriber subscriberv1.SubscriberServiceClient
	digest     digestv1.DigestServiceClient
	sender     senderv1.SenderServiceClient
}

// demoResult says where the demo digest is.
type demoResult struct {
	Edition     string
	Imported    int
	MessageID   string
	EMLPath     string
	HTMLPath    string
	SentEarlier bool // the edition's digest was delivered by an earlier run
	// NothingNew: the demo subscriber was sent every sample paper on an
	// earlier day (a digest never repeats a paper), so today's edition
	// was skipped.
	NothingNew   bool
	SubscriberID string
}

// runDemo walks the product's real path: import the sample papers, subscribe
// the demo address and confirm it with the link from its confirmation mail,
// run today's digest, and wait until the sender reports it delivered.
func runDemo(ctx context.Context, c clients, catcher *mailcatcher.Server, mailDir string, now time.Time) (demoResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 50*time.Second)
	defer cancel()
	var res demoResult
	res.Edition = now.UTC().Format(time.DateOnly)

	papers, err := sample.PapersFeaturedOn(now.UTC())
	if err != nil {
		return res, err
	}
	imp, err := c.digest.ImportPapers(ctx, &digestv1.ImportPapersRequest{
		Format: digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, Data: papers,
	}, grpc.WaitForReady(true))
	if err != nil {
		return res, fmt.Errorf("import sample papers: %w", err)
	}
	res.Imported = len(imp.GetPaperIds())

	id, err := ensureDemoSubscriber(ctx, c, catcher, mailDir)
	if err != nil {
		return res, err
	}
	res.SubscriberID = id

	run, err := c.digest.RunDigest(ctx, &digestv1.RunDigestRequest{Edition: res.Edition})
	if err != nil {
		return res, fmt.Errorf("run digest: %w", err)
	}
	done, err := waitRun(ctx, c.digest, run.GetRun().GetId())
	if err != nil {
		return res, err
	}
	// Sending is idempotent per edition: after an earlier dev run the same
	// day, the sender already has this digest and sends nothing new.
	res.SentEarlier = done.GetQueuedCount() == 0 && done.GetDuplicateCount() > 0
	if done.GetQueuedCount() == 0 && done.GetDuplicateCount() == 0 && done.GetSkippedCount() > 0 {
		res.NothingNew = true
		return res, nil
	}

	key := "digest:" + id + ":" + res.Edition
	msg, err := waitSent(ctx, c.sender, key)
	if err != nil {
		return res, err
	}
	res.MessageID = msg.GetId()
	eml, err := findMail(mailDir, msg.GetId())
	if err != nil {
		return res, err
	}
	res.EMLPath = eml
	res.HTMLPath = strings.TrimSuffix(eml, ".eml") + ".html"
	return res, nil
}

// ensureDemoSubscriber makes demo@example.com an active subscriber through
// Subscribe and the confirmation link, unless it already is one.
func ensureDemoSubscriber(ctx context.Context, c clients, catcher *mailcatcher.Server, mailDir string) (string, error) {
	got, err := c.subscriber.GetSubscriber(ctx, &subscriberv1.GetSubscriberRequest{Email: DemoEmail})
	switch {
	case err == nil && got.GetSubscriber().GetState() == subscriberv1.SubscriberState_SUBSCRIBER_STATE_ACTIVE:
		return got.GetSubscriber().GetId(), nil
	case err != nil && status.Code(err) != codes.NotFound:
		return "", fmt.Errorf("look up the demo subscriber: %w", err)
	}
	if _, err := c.subscriber.Subscribe(ctx, &subscriberv1.SubscribeRequest{
		Email: DemoEmail, ConsentTextVersion: "dev-demo", UserAgent: "paperroute dev",
		// Due now: the demo runs the digest at once, and subscribers are
		// listed by their local delivery hour.
		DeliveryHour: proto.Int32(int32(time.Now().UTC().Hour())), Timezone: "UTC",
	}); err != nil {
		return "", fmt.Errorf("subscribe the demo address: %w", err)
	}
	token, err := confirmationToken(ctx, catcher, mailDir)
	if err != nil {
		return "", err
	}
	conf, err := c.subscriber.ConfirmSubscription(ctx, &subscriberv1.ConfirmSubscriptionRequest{Token: token, UserAgent: "paperroute dev"})
	if err != nil {
		return "", fmt.Errorf("confirm the demo subscriber: %w", err)
	}
	if conf.GetState() != subscriberv1.SubscriberState_SUBSCRIBER_STATE_ACTIVE {
		return "", fmt.Errorf("demo subscriber is %v after confirming (an operator may have suppressed it)", conf.GetState())
	}
	got, err = c.subscriber.GetSubscriber(ctx, &subscriberv1.GetSubscriberRequest{Email: DemoEmail})
	if err != nil {
		return "", fmt.Errorf("look up the demo subscriber: %w", err)
	}
	return got.GetSubscriber().GetId(), nil
}

// confirmationToken takes the token from the demo's confirmation mail: a new
// one if it arrives, else (confirmation mails are throttled to one per ten
// minutes) the newest one an earlier run left in mailDir.
func confirmationToken(ctx context.Context, catcher *mailcatcher.Server, mailDir string) (string, error) {
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	m, err := catcher.WaitFor(wctx, func(m mailcatcher.Message) bool {
		return confirmLink.Match(m.Data) && mailcatcher.To(DemoEmail)(m)
	})
	if err == nil {
		if p, err := mailcatcher.Parse(m.Data); err == nil {
			if sm := confirmLink.FindStringSubmatch(p.Text + p.HTML); sm != nil {
				return sm[1], nil
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(mailDir, "*-"+DemoEmail+".eml"))
	sort.Sort(sort.Reverse(sort.StringSlice(files))) // names start with the time
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		p, err := mailcatcher.Parse(b)
		if err != nil {
			continue
		}
		if sm := confirmLink.FindStringSubmatch(p.Text); sm != nil {
			return sm[1], nil
		}
	}
	return "", errors.New("no confirmation mail for the demo subscriber arrived")
}

func waitRun(ctx context.Context, digest digestv1.DigestServiceClient, runID string) (*digestv1.DigestRun, error) {
	for {
		r, err := digest.GetDigestRun(ctx, &digestv1.GetDigestRunRequest{RunId: runID})
		if err != nil {
			return nil, fmt.Errorf("follow digest run %s: %w", runID, err)
		}
		switch r.GetRun().GetState() {
		case digestv1.DigestRunState_DIGEST_RUN_STATE_SUCCEEDED:
			return r.GetRun(), nil
		case digestv1.DigestRunState_DIGEST_RUN_STATE_FAILED:
			return nil, fmt.Errorf("digest run %s failed: %s", runID, r.GetRun().GetError())
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, fmt.Errorf("digest run %s did not finish: %w", runID, err)
		}
	}
}

func waitSent(ctx context.Context, sender senderv1.SenderServiceClient, key string) (*senderv1.Message, error) {
	for {
		r, err := sender.GetMessage(ctx, &senderv1.GetMessageRequest{IdempotencyKey: key})
		if err != nil && status.Code(err) != codes.NotFound {
			return nil, fmt.Errorf("follow message %s: %w", key, err)
		}
		switch r.GetMessage().GetState() {
		case senderv1.MessageState_MESSAGE_STATE_SENT:
			return r.GetMessage(), nil
		case senderv1.MessageState_MESSAGE_STATE_DEAD:
			return nil, fmt.Errorf("the demo digest could not be delivered: %s", r.GetMessage().GetLastError())
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, fmt.Errorf("the demo digest was not delivered in time (last error %q): %w", r.GetMessage().GetLastError(), err)
		}
	}
}

// findMail returns the .eml in dir whose Message-ID is <id@…>.
func findMail(dir, id string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		return "", err
	}
	want := []byte("<" + id + "@")
	for _, f := range files {
		if headerHas(f, want) {
			return f, nil
		}
	}
	return "", fmt.Errorf("the demo digest (Message-ID <%s@…>) was delivered but is not in %s", id, dir)
}

func headerHas(path string, want []byte) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			return false // end of the header
		}
		if bytes.HasPrefix(bytes.ToLower(line), []byte("message-id:")) {
			return bytes.Contains(line, want)
		}
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
