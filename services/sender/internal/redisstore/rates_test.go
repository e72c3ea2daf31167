package redisstore_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
)

// Rates are the counters' growth since the sample of w minutes ago, summed
// over the partitions; each minute's sample is taken once (the first
// replica wins), and a window without a sample is left out.
func TestStatsRatesFromMinuteSamples(t *testing.T) {
	t.Parallel()
	s, rdb, ctx := newStore(t)
	// The samples are found by the minute Stats reads them in: stay clear
	// of a minute's end so that the test and Stats agree on it.
	for time.Now().Second() >= 55 {
		time.Sleep(100 * time.Millisecond)
	}
	now := time.Now()
	// A sender sampled 5 minutes ago (and 1 minute ago, before anything
	// was sent), then messages finished.
	for _, ago := range []time.Duration{5 * time.Minute, time.Minute} {
		if err := s.SampleStats(ctx, now.Add(-ago)); err != nil {
			t.Fatal(err)
		}
	}
	rdb.HIncrBy(ctx, redisstore.StatsKey(0), "bulk:sent", 50)
	rdb.HIncrBy(ctx, redisstore.StatsKey(1), "bulk:sent", 25)
	rdb.HIncrBy(ctx, redisstore.StatsKey(1), "bulk:dead", 5)
	rdb.HIncrBy(ctx, redisstore.StatsKey(0), "tx:cancelled", 10)
	// Another replica sampling the same minute later changes nothing.
	if err := s.SampleStats(ctx, now.Add(-5*time.Minute+10*time.Second)); err != nil {
		t.Fatal(err)
	}
	stats, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stats {
		if len(st.Rates) != 2 {
			t.Fatalf("%s: %d rate windows, want 2 (1 and 5 minutes; no sample 15 minutes ago): %+v", st.Lane, len(st.Rates), st.Rates)
		}
		one, five := st.Rates[0], st.Rates[1]
		if one.Window < time.Minute || one.Window > time.Minute+5*time.Second ||
			five.Window < 5*time.Minute || five.Window > 5*time.Minute+5*time.Second {
			t.Errorf("%s: windows %v and %v, want 1m and 5m (the spans since the samples)", st.Lane, one.Window, five.Window)
		}
		var want [2]queue.Rate
		switch st.Lane {
		case queue.LaneBulk:
			want[0] = queue.Rate{SentPerMinute: 75, DeadPerMinute: 5}
			want[1] = queue.Rate{SentPerMinute: 15, DeadPerMinute: 1}
		case queue.LaneTransactional:
			want[0] = queue.Rate{CancelledPerMinute: 10}
			want[1] = queue.Rate{CancelledPerMinute: 2}
		}
		for i, got := range []queue.Rate{one, five} {
			got.Window = 0
			if !near(got.SentPerMinute, want[i].SentPerMinute) || !near(got.DeadPerMinute, want[i].DeadPerMinute) ||
				!near(got.CancelledPerMinute, want[i].CancelledPerMinute) {
				t.Errorf("%s window %d: %+v, want about %+v", st.Lane, i, got, want[i])
			}
		}
	}
	if ttl := rdb.PTTL(ctx, redisstore.SampleKey(0, now.Add(-time.Minute).Unix()/60)).Val(); ttl <= 15*time.Minute || ttl > 17*time.Minute {
		t.Errorf("sample TTL %v, want 17m (the longest window and a little)", ttl)
	}
}

// near is within 2 % (the windows are a few seconds longer than nominal
// while the test runs).
func near(got, want float64) bool {
	return got >= want*0.98 && got <= want*1.02
}

// Dead letters: the dead sets and the missing-record streams, summed over
// the partitions.
func TestDeadLetterCounts(t *testing.T) {
	t.Parallel()
	s, rdb, ctx := newStore(t)
	if n, err := s.DeadLetters(ctx); err != nil || n != (queue.DeadLetterCounts{}) {
		t.Fatalf("empty queue: %+v, %v", n, err)
	}
	rdb.ZAdd(ctx, redisstore.DeadKey(0), redis.Z{Score: 1, Member: "a"}, redis.Z{Score: 2, Member: "b"})
	rdb.ZAdd(ctx, redisstore.DeadKey(1), redis.Z{Score: 1, Member: "c"})
	rdb.XAdd(ctx, &redis.XAddArgs{Stream: redisstore.DeadLetterKey(1), Values: []any{"id", "x", "reason", "missing"}})
	n, err := s.DeadLetters(ctx)
	if err != nil || n != (queue.DeadLetterCounts{Dead: 3, MissingRecords: 1}) {
		t.Errorf("DeadLetters = %+v, %v; want 3 dead, 1 missing record", n, err)
	}
}
