package senderd_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"google.golang.org/protobuf/types/known/timestamppb"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/mailcatcher"
	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
)

// GetQueueStats over gRPC: per-lane rates from the counter samples (here
// a sample planted as a sender running five minutes ago would have taken
// it) and the dead letters held.
func TestQueueStatsRatesAndDeadLetters(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := testContext(t)
	store := redisstore.New(h.rdb, 2)
	if err := store.EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	// Samples of two consecutive minutes, so that whichever minute the
	// stats are read in, the 5-minute window finds one.
	for _, ago := range []time.Duration{5 * time.Minute, 4 * time.Minute} {
		if err := store.SampleStats(ctx, time.Now().Add(-ago)); err != nil {
			t.Fatal(err)
		}
	}
	var f faults
	h.mail.SetFault(f.failFirst(mailcatcher.StageRcpt, 1, &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}))
	h.start(nil)
	h.enqueue(ctx, txMessage("rate:dead", "dead@example.com", "hi"))
	h.waitState(ctx, "rate:dead", senderv1.MessageState_MESSAGE_STATE_DEAD)
	for i := range 3 {
		key := fmt.Sprint("rate:", i)
		h.enqueue(ctx, txMessage(key, fmt.Sprintf("rate%d@example.com", i), "hi"))
		h.waitState(ctx, key, senderv1.MessageState_MESSAGE_STATE_SENT)
	}
	st := h.stats(ctx)
	if st.GetDeadLetterCount() != 1 || st.GetMissingRecordCount() != 0 {
		t.Errorf("dead letters %d, missing records %d; want 1 and 0", st.GetDeadLetterCount(), st.GetMissingRecordCount())
	}
	var five *senderv1.LaneRate
	for _, lane := range st.GetLanes() {
		if lane.GetLane() != senderv1.Lane_LANE_TRANSACTIONAL {
			continue
		}
		for _, r := range lane.GetRates() {
			if w := r.GetWindow().AsDuration(); w >= 4*time.Minute && w < 7*time.Minute {
				five = r
			}
		}
	}
	if five == nil {
		t.Fatalf("no 5-minute rate for the transactional lane: %v", st)
	}
	minutes := five.GetWindow().AsDuration().Minutes()
	if sent := five.GetSentPerMinute() * minutes; math.Abs(sent-3) > 0.01 {
		t.Errorf("sent over the window = %.3f (%.3f/min over %.2f min), want 3", sent, five.GetSentPerMinute(), minutes)
	}
	if dead := five.GetDeadPerMinute() * minutes; math.Abs(dead-1) > 0.01 {
		t.Errorf("dead over the window = %.3f, want 1", dead)
	}
}

// ListMessages' creation-time filter over gRPC, and its invalid inputs.
func TestListMessagesByCreationTimeOverGRPC(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(nil)
	ctx := testContext(t)
	var created []*timestamppb.Timestamp
	for i := range 4 {
		key := fmt.Sprint("c:", i)
		h.enqueue(ctx, txMessage(key, fmt.Sprintf("c%d@example.com", i), "hi"))
		created = append(created, h.waitState(ctx, key, senderv1.MessageState_MESSAGE_STATE_SENT).GetCreateTime())
	}
	var keys []string
	token := ""
	for pages := 0; pages < 10; pages++ {
		resp, err := h.admin.ListMessages(ctx, &senderv1.ListMessagesRequest{
			CreatedAfter: created[1], CreatedBefore: created[3], PageSize: 1, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range resp.GetMessages() {
			keys = append(keys, m.GetIdempotencyKey())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if fmt.Sprint(keys) != "[c:2 c:1]" {
		t.Errorf("created in [c:1, c:3): listed %v, want [c:2 c:1]", keys)
	}
	for _, bad := range []struct {
		name  string
		req   *senderv1.ListMessagesRequest
		field string
	}{
		{"reversed", &senderv1.ListMessagesRequest{CreatedAfter: created[3], CreatedBefore: created[1]}, "created_before"},
		{"not a valid timestamp", &senderv1.ListMessagesRequest{CreatedAfter: &timestamppb.Timestamp{Seconds: 1, Nanos: -5}}, "created_after"},
		{"the Unix epoch", &senderv1.ListMessagesRequest{CreatedAfter: &timestamppb.Timestamp{}}, "created_after"},
		{"beyond year 9999", &senderv1.ListMessagesRequest{CreatedBefore: &timestamppb.Timestamp{Seconds: 253402300800}}, "created_before"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			_, err := h.admin.ListMessages(ctx, bad.req)
			checkViolation(t, err, bad.field)
		})
	}
}
