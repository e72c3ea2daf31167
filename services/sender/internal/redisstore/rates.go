package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// Delivery rates come from the partitions' counters (StatsKey), which the
// finishing scripts already increment: once a minute a sender copies each
// partition's counters into a sample key for that minute, and GetQueueStats
// divides the growth since the sample of w minutes ago by the time since it
// was taken. Nothing is written per message and nothing is scanned; every
// replica may sample, the first one each minute wins (the sample is set
// once), so the rates cover all replicas.

// SampleEvery is how often a sender checks whether this minute's sample is
// taken: a sample is at most this late.
const SampleEvery = 10 * time.Second

// sampleTTL keeps samples for the longest window and a little more.
const sampleTTL = 17 * time.Minute

// SampleKey is partition's counter sample of the Unix minute (in the
// partition's hash slot, next to StatsKey).
func SampleKey(partition int, minute int64) string {
	return fmt.Sprintf("snd:stats:{%d}:min:%d", partition, minute)
}

// sampleScript copies the counters into this minute's sample with the time
// it was taken, unless the minute was sampled already.
//
//	KEYS: stats, sample
//	ARGV: now (Unix ms), ttl (ms)
var sampleScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local v = redis.call('HGETALL', KEYS[1])
v[#v+1] = 'at'
v[#v+1] = ARGV[1]
redis.call('HSET', KEYS[2], unpack(v))
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`)

// SampleStats takes this minute's counter sample of every partition, unless
// another sender took it already.
func (s *Store) SampleStats(ctx context.Context, now time.Time) error {
	minute := now.Unix() / 60
	for part := range s.partitions {
		err := sampleScript.Run(ctx, s.rdb, []string{StatsKey(part), SampleKey(part, minute)},
			now.UnixMilli(), sampleTTL.Milliseconds()).Err()
		if err != nil {
			return fmt.Errorf("redisstore: sample stats of partition %d: %w", part, err)
		}
	}
	return nil
}

// RunSampler takes the counter samples until ctx is done. A failed sample
// is tried again at the next tick (a missed minute only shortens what the
// rates can tell for a while).
func (s *Store) RunSampler(ctx context.Context) error {
	t := time.NewTicker(SampleEvery)
	defer t.Stop()
	for {
		_ = s.SampleStats(ctx, time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// sampleCmds are the pipelined reads of each partition's sample for each
// window: [partition][window].
type sampleCmds [][]*redis.MapStringStringCmd

// readSamples queues the reads of the samples the rate windows need.
func (s *Store) readSamples(ctx context.Context, p redis.Pipeliner, now time.Time) sampleCmds {
	minute := now.Unix() / 60
	out := make(sampleCmds, s.partitions)
	for part := range s.partitions {
		for _, w := range queue.RateWindows {
			out[part] = append(out[part], p.HGetAll(ctx, SampleKey(part, minute-int64(w/time.Minute))))
		}
	}
	return out
}

// addRates fills st's Rates from the samples and the current counters
// (counters[partition]). A window is given only when every partition has
// its sample; the partitions' rates add up, the window is the longest span.
func addRates(st []queue.LaneStats, samples sampleCmds, counters []map[string]string, now time.Time) error {
	for wi := range queue.RateWindows {
		rates := make([]queue.Rate, len(st))
		complete := true
		for part, cur := range counters {
			vals, err := samples[part][wi].Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return fmt.Errorf("redisstore: rates: %w", err)
			}
			at, _ := strconv.ParseInt(vals["at"], 10, 64)
			span := now.Sub(time.UnixMilli(at))
			if at == 0 || span <= 0 {
				complete = false
				break
			}
			minutes := span.Minutes()
			for i := range st {
				r := &rates[i]
				r.Window = max(r.Window, span)
				lane := st[i].Lane
				r.SentPerMinute += growth(cur, vals, lane, "sent") / minutes
				r.DeadPerMinute += growth(cur, vals, lane, "dead") / minutes
				r.CancelledPerMinute += growth(cur, vals, lane, "cancelled") / minutes
			}
		}
		if !complete {
			continue
		}
		for i := range st {
			st[i].Rates = append(st[i].Rates, rates[i])
		}
	}
	return nil
}

// growth is how much a counter grew since the sample (never negative: a
// counter reset reads as no growth).
func growth(cur, sample map[string]string, lane queue.Lane, name string) float64 {
	return float64(max(0, counter(cur, lane, name)-counter(sample, lane, name)))
}

// DeadLetters implements queue.Store: the dead sets' and the missing-record
// streams' sizes, summed over the partitions.
func (s *Store) DeadLetters(ctx context.Context) (queue.DeadLetterCounts, error) {
	dead := make([]*redis.IntCmd, s.partitions)
	missing := make([]*redis.IntCmd, s.partitions)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for part := range s.partitions {
			dead[part] = p.ZCard(ctx, DeadKey(part))
			missing[part] = p.XLen(ctx, DeadLetterKey(part))
		}
		return nil
	})
	if err != nil {
		return queue.DeadLetterCounts{}, fmt.Errorf("redisstore: count dead letters: %w", err)
	}
	var out queue.DeadLetterCounts
	for part := range s.partitions {
		out.Dead += dead[part].Val()
		out.MissingRecords += missing[part].Val()
	}
	return out, nil
}
