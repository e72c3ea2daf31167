package redisstore

import (
	"context"
	"fmt"
	"math/bits"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RelayPacer is delivery.RelayPacer on Redis. Each relay has one hash,
// RelayKey, shared by every replica, holding
//
//   - tat: the GCRA theoretical arrival time of the relay's next send, for
//     its messages/s limit (burst: one second's worth) and for a slowdown;
//   - gap, gapat: the gap between sends that the relay's throttling replies
//     asked for, and when it was last set. Every throttling reply doubles
//     it (at least MinGap, at most MaxGap); every delivery shrinks it by a
//     tenth (as the per-process throttle did, so a relay that throttles a
//     few percent of the messages at random is not slowed to a crawl); it
//     also halves every HalfLife (on Redis' clock, so replicas' clocks do
//     not matter), and ends below MinGap. While it lasts, sends to the
//     relay from all replicas together are spaced by it (burst 1).
//
// Deliveries are not written one by one: a replica counts those it made
// while the relay was slowed and hands the count to the next Reserve,
// which it makes for every send while the relay is slowed anyway.
//
// One script reads and updates both, so a relay with a limit costs one
// round trip per send, as the limit alone did. A relay without a limit
// costs none while it is not slowed: the pacer then asks Redis at most once
// per Refresh per relay, so another replica's slowdown is seen within
// Refresh; while slowed, every send takes its slot in Redis.
type RelayPacer struct {
	rdb    redis.UniversalClient
	limits map[string]int
	// fallbackLimit applies to relays not in limits.
	fallbackLimit int
	cfg           PacerConfig

	mu     sync.Mutex
	relays map[string]*relayState
	// onLimited, if set, is called with "relay" for each send held back.
	onLimited func(limit string)
}

// OnLimited makes r call f with "relay" each time a relay's limit or its
// slowdown holds a send back (the send waits). It returns r.
func (r *RelayPacer) OnLimited(f func(limit string)) *RelayPacer {
	r.onLimited = f
	return r
}

// relayState is what this process knows of a relay between round trips.
type relayState struct {
	quietUntil time.Time // an unlimited relay needs no asking until then
	slowed     bool      // the last answer had a gap
	delivered  int       // deliveries since, while slowed, not yet reported
}

func (r *RelayPacer) state(relay string) *relayState {
	st, ok := r.relays[relay]
	if !ok {
		st = &relayState{}
		r.relays[relay] = st
	}
	return st
}

// PacerConfig tunes the shared slowdown; zero fields take the defaults.
type PacerConfig struct {
	// MinGap is the first gap after a throttling reply (default 20ms).
	MinGap time.Duration
	// MaxGap is the longest gap (default 10s).
	MaxGap time.Duration
	// HalfLife is how long the gap takes to halve without new throttling
	// replies (default 10s).
	HalfLife time.Duration
	// Refresh is how long an unlimited relay that is not slowed goes
	// without asking Redis (default 1s).
	Refresh time.Duration
	// Now is the clock for Refresh; nil means time.Now.
	Now func() time.Time
}

// RelayKey is the pacing state of one relay (its address), in a hash slot
// of its own.
func RelayKey(relay string) string { return "snd:relay:{" + relay + "}" }

// NewRelayPacer paces each relay to limits[relay] messages/s (relays not in
// limits to fallback; 0: no limit) and to its throttling replies.
func NewRelayPacer(rdb redis.UniversalClient, limits map[string]int, fallback int, cfg PacerConfig) *RelayPacer {
	if cfg.MinGap <= 0 {
		cfg.MinGap = 20 * time.Millisecond
	}
	if cfg.MaxGap <= 0 {
		cfg.MaxGap = 10 * time.Second
	}
	cfg.MaxGap = max(cfg.MaxGap, cfg.MinGap)
	if cfg.HalfLife <= 0 {
		cfg.HalfLife = 10 * time.Second
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &RelayPacer{rdb: rdb, limits: limits, fallbackLimit: fallback, cfg: cfg, relays: map[string]*relayState{}}
}

// paceScript takes one send from a relay's pacing state or says how long
// to wait, after easing the gap for the deliveries reported. It returns
// {wait ms, current gap ms}.
//
//	KEYS: relay
//	ARGV: limit interval ms (0: no limit), limit burst, half-life ms, min gap ms,
//	      deliveries to ease the gap by
var paceScript = redis.NewScript(`
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local v = redis.call('HMGET', KEYS[1], 'tat', 'gap', 'gapat')
local gap = 0
if v[2] then
  gap = tonumber(v[2]) * math.pow(0.5, (now - tonumber(v[3])) / tonumber(ARGV[3]))
  local n = tonumber(ARGV[5])
  if n > 0 then
    gap = gap * math.pow(0.9, n)
    redis.call('HSET', KEYS[1], 'gap', gap, 'gapat', now)
  end
  if gap < tonumber(ARGV[4]) then gap = 0 end
end
local interval = math.max(tonumber(ARGV[1]), gap)
if interval <= 0 then return {0, 0} end
local burst = tonumber(ARGV[2])
if gap > 0 then burst = 1 end
local tat = math.max(tonumber(v[1]) or now, now)
local tau = (burst - 1) * interval
if tat - now > tau then
  return {math.ceil(tat - tau - now), math.floor(gap)}
end
tat = tat + interval
redis.call('HSET', KEYS[1], 'tat', tat)
redis.call('PEXPIRE', KEYS[1], math.max(math.ceil(tat - now) + 1000, redis.call('PTTL', KEYS[1])))
return {0, math.floor(gap)}
`)

// slowScript doubles a relay's decayed gap and returns it in ms.
//
//	KEYS: relay
//	ARGV: half-life ms, min gap ms, max gap ms, ttl ms
var slowScript = redis.NewScript(`
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local v = redis.call('HMGET', KEYS[1], 'gap', 'gapat')
local gap = 0
if v[1] then
  gap = tonumber(v[1]) * math.pow(0.5, (now - tonumber(v[2])) / tonumber(ARGV[1]))
end
gap = math.floor(math.min(math.max(2 * gap, tonumber(ARGV[2])), tonumber(ARGV[3])))
redis.call('HSET', KEYS[1], 'gap', gap, 'gapat', now)
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[4]), redis.call('PTTL', KEYS[1])))
return gap
`)

func (r *RelayPacer) limit(relay string) int {
	if n, ok := r.limits[relay]; ok {
		return n
	}
	return r.fallbackLimit
}

// Reserve implements delivery.RelayPacer.
func (r *RelayPacer) Reserve(ctx context.Context, relay string) (time.Duration, error) {
	limit := r.limit(relay)
	r.mu.Lock()
	st := r.state(relay)
	if limit <= 0 && r.cfg.Now().Before(st.quietUntil) {
		r.mu.Unlock()
		return 0, nil
	}
	delivered := st.delivered
	st.delivered = 0
	r.mu.Unlock()
	interval := 0.0
	if limit > 0 {
		interval = 1000 / float64(limit)
	}
	res, err := paceScript.Run(ctx, r.rdb, []string{RelayKey(relay)},
		interval, max(limit, 1), r.cfg.HalfLife.Milliseconds(), r.cfg.MinGap.Milliseconds(), delivered).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("redisstore: pace relay %s: %w", relay, err)
	}
	if len(res) != 2 {
		return 0, fmt.Errorf("redisstore: pace relay %s: unexpected reply %v", relay, res)
	}
	wait, gap := time.Duration(res[0])*time.Millisecond, res[1]
	r.mu.Lock()
	st.slowed = gap > 0
	if gap == 0 && limit <= 0 {
		st.quietUntil = r.cfg.Now().Add(r.cfg.Refresh)
	}
	r.mu.Unlock()
	if wait > 0 && r.onLimited != nil {
		r.onLimited("relay")
	}
	return wait, nil
}

// Delivered implements delivery.RelayPacer: a delivery made while the
// relay was slowed eases the gap at the next Reserve.
func (r *RelayPacer) Delivered(relay string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.state(relay); st.slowed {
		st.delivered++
	}
}

// SlowDown implements delivery.RelayPacer.
func (r *RelayPacer) SlowDown(ctx context.Context, relay string) (time.Duration, error) {
	r.mu.Lock()
	st := r.state(relay)
	st.quietUntil, st.slowed, st.delivered = time.Time{}, true, 0
	r.mu.Unlock()
	gap, err := slowScript.Run(ctx, r.rdb, []string{RelayKey(relay)}, r.cfg.HalfLife.Milliseconds(),
		r.cfg.MinGap.Milliseconds(), r.cfg.MaxGap.Milliseconds(), r.stateTTL().Milliseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("redisstore: slow down relay %s: %w", relay, err)
	}
	return time.Duration(gap) * time.Millisecond, nil
}

// stateTTL keeps a relay's state until its longest gap has decayed below
// MinGap (one half-life per halving, and one more).
func (r *RelayPacer) stateTTL() time.Duration {
	halvings := bits.Len64(uint64(r.cfg.MaxGap / r.cfg.MinGap))
	return time.Duration(halvings+1) * r.cfg.HalfLife
}
