package stack_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/redistest"
)

// TestPrimaryRestartedMidSend kills a Cluster master with SIGKILL while the
// sender is delivering an edition and starts it again on the same port and
// data directory, then checks that every due reader got exactly one digest
// (counted per recipient at the SMTP catcher), that nothing was
// dead-lettered, and that the bulk lane ends with every message SENT and
// nothing left waiting, pending or retrying.
//
// The cluster has no replicas, so nothing takes the dead master's slots
// over: it must come back with its data, which it does because every node
// runs with AOF and appendfsync always (a write Redis acknowledged is on
// disk; with everysec a SIGKILL could lose the last second's sent marks,
// hence duplicates). While it is down the sender meets connection errors
// on its partitions, then — once the other masters agree it failed
// (cluster-node-timeout, 2 s here) — CLUSTERDOWN on every key; it must
// wait and retry, never count that against a message's attempts.
//
// All three services use the cluster, the subscriber included.
func TestPrimaryRestartedMidSend(t *testing.T) {
	const (
		readers = 60
		// rate is SENDER_RATE_LIMIT: slow enough that the edition is still
		// being delivered when the master dies (a burst of rate, then rate/s).
		rate = 10
	)
	cluster := redistest.StartCluster(t, 3, redistest.WithAppendFsync("always"))
	w := startWorldWith(t, worldOptions{
		redisURL: cluster.URL(),
		extraEnv: map[string]string{
			"SENDER_RATE_LIMIT": fmt.Sprint(rate),
			"SENDER_PARTITIONS": "4",
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s", what)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}

	// The master holding the most bulk partitions is the one restarted.
	owned := map[*redistest.Server]int{}
	var victim *redistest.Server
	for p := range 4 {
		n, err := cluster.Owner(ctx, fmt.Sprintf("snd:q:bulk:{%d}", p))
		if err != nil {
			t.Fatal(err)
		}
		if owned[n]++; victim == nil || owned[n] > owned[victim] {
			victim = n
		}
	}

	emails := make([]string, readers)
	var csv strings.Builder
	csv.WriteString("email,consent_text_version,consent_time,delivery_hour,timezone\n")
	for i := range emails {
		emails[i] = fmt.Sprintf("restart-%02d@example.org", i)
		fmt.Fprintf(&csv, "%s,v1,2026-01-05T10:00:00Z,%d,UTC\n", emails[i], time.Now().UTC().Hour())
	}
	stream, err := w.sub.ImportSubscribers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&subscriberv1.ImportSubscribersRequest{Format: subscriberv1.ImportFormat_IMPORT_FORMAT_CSV, Source: "cluster-test", Data: []byte(csv.String())}); err != nil {
		t.Fatal(err)
	}
	if res, err := stream.CloseAndRecv(); err != nil || res.GetImportedActive() != readers {
		t.Fatalf("ImportSubscribers on the cluster: %v, %v; want %d active", res, err, readers)
	}
	papers, err := os.ReadFile("../devmode/sample/hf-daily-papers-2026-06-12.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.dig.ImportPapers(ctx, &digestv1.ImportPapersRequest{Format: digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, Data: papers}); err != nil {
		t.Fatalf("ImportPapers on the cluster: %v", err)
	}
	if run := w.runDigest(ctx, "2026-06-12"); run.GetQueuedCount() != readers || run.GetFailedCount() != 0 {
		t.Fatalf("run on the cluster: queued %d failed %d, want %d and 0", run.GetQueuedCount(), run.GetFailedCount(), readers)
	}

	delivered := func() int {
		n := 0
		for _, e := range emails {
			if len(w.digestsTo(e)) > 0 {
				n++
			}
		}
		return n
	}
	waitFor("a quarter of the digests delivered", func() bool { return delivered() >= readers/4 })
	atKill := delivered()
	victim.Kill()
	cluster.WaitFailed(victim)
	atFail := delivered()
	victim.Restart()
	cluster.WaitOK()
	atRestart := delivered()
	t.Logf("master %s (%d of 4 bulk partitions) killed after %d of %d digests, agreed failed after %d, back after %d",
		victim.Addr(), owned[victim], atKill, readers, atFail, atRestart)
	if atRestart == readers {
		t.Fatalf("all %d digests were out before the master came back: the restart did not happen mid-send", readers)
	}

	waitFor("every reader's digest", func() bool { return delivered() == readers })
	// Every outcome recorded: nothing is left to be sent again.
	waitFor("the bulk lane to settle", func() bool {
		s := w.bulkStats(ctx)
		return s.GetSentCount()+s.GetDeadCount() == readers && s.GetWaitingCount()+s.GetPendingCount()+s.GetRetryingCount() == 0
	})
	if s := w.bulkStats(ctx); s.GetSentCount() != readers || s.GetDeadCount() != 0 {
		t.Errorf("bulk lane: sent %d dead %d, want %d and 0 (a Redis outage must not dead-letter mail)", s.GetSentCount(), s.GetDeadCount(), readers)
	}
	for _, e := range emails {
		if n := len(w.digestsTo(e)); n != 1 {
			t.Errorf("%s got %d digests, want exactly 1", e, n)
		}
	}
	// The outage spent no attempts: at most the one a send had taken when
	// its own master died (the lease was counted, the outcome not yet
	// written) is counted twice. Reading a recipient's cancels from a dead
	// node used to cost an attempt every SENDER_RETRY_AFTER until the
	// message was dead-lettered.
	attempts := map[int32]int{}
	list, err := w.snd.ListMessages(ctx, &senderv1.ListMessagesRequest{Lane: senderv1.Lane_LANE_BULK, PageSize: readers})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range list.GetMessages() {
		attempts[m.GetAttemptCount()]++
		if m.GetAttemptCount() > 2 {
			t.Errorf("%s took %d attempts (%s), want at most 2", m.GetRecipient(), m.GetAttemptCount(), m.GetLastError())
		}
	}
	t.Logf("messages by attempt count: %v", attempts)
	if n := len(w.catcher.Messages()); n != readers {
		t.Errorf("the relay received %d messages, want %d", n, readers)
	}
}
