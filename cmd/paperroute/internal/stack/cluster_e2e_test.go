package stack_test

import (
	"os"
	"testing"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	"github.com/paperroute/paperroute/platform/redistest"
)

// TestDigestAndSenderOnRedisCluster runs the three services on a real
// 3-master Redis Cluster: subscribe and confirm by mail, import, a digest
// run, delivery, a repeated run that sends nothing twice, and a master
// killed and restarted (AOF) between two editions. A CROSSSLOT error
// anywhere fails a call, the run or the delivery. TestPrimaryRestartedMidSend
// restarts a master in the middle of a send.
func TestDigestAndSenderOnRedisCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	w := startWorldWith(t, worldOptions{redisURL: cluster.URL()})
	ctx := ctxT(t)
	const reader, second = "cluster-reader@example.org", "cluster-second@example.net"

	w.subscribeAndConfirm(ctx, reader)
	papers, err := os.ReadFile("../devmode/sample/hf-daily-papers-2026-06-12.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.dig.ImportPapers(ctx, &digestv1.ImportPapersRequest{Format: digestv1.PaperFormat_PAPER_FORMAT_HF_DAILY_JSON, Data: papers}); err != nil {
		t.Fatalf("ImportPapers on the cluster: %v", err)
	}
	if run := w.runDigest(ctx, "2026-06-12"); run.GetQueuedCount() != 1 || run.GetFailedCount() != 0 {
		t.Fatalf("run on the cluster: queued %d failed %d, want 1 and 0", run.GetQueuedCount(), run.GetFailedCount())
	}
	w.waitDigests(ctx, reader, 1)

	// A master dies and comes back with its AOF; everything it held is
	// still there, and the next run neither repeats nor loses a digest.
	cluster.Nodes[0].Kill()
	cluster.Nodes[0].Restart()
	cluster.WaitOK() // the others count it failed for a moment: no replica takes over
	w.subscribeAndConfirm(ctx, second)
	again := w.runDigest(ctx, "2026-06-12")
	if again.GetQueuedCount() != 1 || again.GetDuplicateCount() != 1 {
		t.Fatalf("run after a master restart: queued %d duplicate %d, want 1 and 1", again.GetQueuedCount(), again.GetDuplicateCount())
	}
	w.waitDigests(ctx, second, 1)
	if got := len(w.digestsTo(reader)); got != 1 {
		t.Fatalf("reader has %d digests for one edition, want 1", got)
	}
}
