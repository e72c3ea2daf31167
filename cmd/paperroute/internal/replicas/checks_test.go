package replicas_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/mailcatcher"
)

// smtpLag is how much later than the rate limiter's grant a message may
// reach the catcher: one SMTP transaction on a loaded machine.
const smtpLag = 250 * time.Millisecond

// checkRate checks that the catcher's receive times keep a limit of rate
// messages/s with a burst of rate (redis_rate's GCRA): every interval
// between two receive times holds at most burst + rate × (its length +
// smtpLag), and all of them took at least 90 % of (n − burst) / rate. It
// returns the sorted times.
func checkRate(msgs []mailcatcher.Message, rate int) ([]time.Time, error) {
	times := make([]time.Time, 0, len(msgs))
	for _, m := range msgs {
		times = append(times, m.Received)
	}
	if len(times) < 2 {
		return nil, fmt.Errorf("rate: %d messages, too few to measure", len(times))
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	for i := range times {
		for j := i + 1; j < len(times); j++ {
			allowed := float64(rate) + float64(rate)*(times[j].Sub(times[i])+smtpLag).Seconds()
			if float64(j-i+1) > allowed {
				return nil, fmt.Errorf("%d messages within %v (from #%d), more than the limit allows (%.0f at %d/s)", j-i+1, times[j].Sub(times[i]), i, allowed, rate)
			}
		}
	}
	span := times[len(times)-1].Sub(times[0])
	if minSpan := time.Duration(float64(len(times)-rate) / float64(rate) * 0.9 * float64(time.Second)); span < minSpan {
		return nil, fmt.Errorf("%d messages in %v: faster than %d/s allows (at least %v)", len(times), span, rate, minSpan)
	}
	return times, nil
}

// checkOneEach checks that every reader got exactly one message and nobody
// else got any. A second copy is allowed only for a reader whose first copy
// arrived before a sender was killed at killedAt — that process may have
// died between the relay's 250 and writing it down — and at most one per
// SMTP connection of the killed sender (docs/delivery.md). It returns the
// readers with a second copy.
func checkOneEach(msgs []mailcatcher.Message, readers []string, killedAt time.Time, connections int) ([]string, error) {
	count := map[string]int{}
	firstAt := map[string]time.Time{}
	for _, m := range msgs {
		for _, to := range m.To {
			if count[to] == 0 {
				firstAt[to] = m.Received
			}
			count[to]++
		}
	}
	var extra []string
	for _, r := range readers {
		switch n := count[r]; {
		case n == 1:
		case n == 2 && firstAt[r].Before(killedAt):
			extra = append(extra, r)
		default:
			return nil, fmt.Errorf("%s got %d messages, want 1", r, n)
		}
	}
	if len(extra) > connections {
		return nil, fmt.Errorf("%d readers got a second copy (%v), more than the killed sender's %d connections explain", len(extra), extra, connections)
	}
	if len(count) != len(readers) {
		return nil, fmt.Errorf("messages went to %d addresses, want the %d readers", len(count), len(readers))
	}
	return extra, nil
}

// TestChecks shows that the checks of TestSeveralReplicas fail when what
// they guard is broken.
func TestChecks(t *testing.T) {
	t0 := time.Date(2026, 6, 12, 9, 0, 0, 0, time.UTC)
	paced := func(n int, every time.Duration) []mailcatcher.Message {
		var out []mailcatcher.Message
		for i := range n {
			out = append(out, mailcatcher.Message{To: []string{fmt.Sprint("r", i)}, Received: t0.Add(time.Duration(i) * every)})
		}
		return out
	}
	t.Run("rate kept", func(t *testing.T) {
		if _, err := checkRate(paced(100, 40*time.Millisecond), 25); err != nil {
			t.Errorf("100 messages 40 ms apart at 25/s: %v, want nil", err)
		}
	})
	t.Run("rate exceeded", func(t *testing.T) {
		if _, err := checkRate(paced(100, 20*time.Millisecond), 25); err == nil {
			t.Error("100 messages 20 ms apart at 25/s: nil, want an error")
		}
	})
	readers := []string{"a", "b", "c"}
	kill := t0.Add(time.Second)
	msg := func(to string, at time.Duration) mailcatcher.Message {
		return mailcatcher.Message{To: []string{to}, Received: t0.Add(at)}
	}
	for _, tc := range []struct {
		name    string
		msgs    []mailcatcher.Message
		wantErr bool
	}{
		{"one each", []mailcatcher.Message{msg("a", 0), msg("b", 0), msg("c", 0)}, false},
		{"second copy of one sent before the kill", []mailcatcher.Message{msg("a", 0), msg("a", 2*time.Second), msg("b", 0), msg("c", 0)}, false},
		{"second copy of one sent after the kill", []mailcatcher.Message{msg("a", 2*time.Second), msg("a", 3*time.Second), msg("b", 0), msg("c", 0)}, true},
		{"third copy", []mailcatcher.Message{msg("a", 0), msg("a", 0), msg("a", 0), msg("b", 0), msg("c", 0)}, true},
		{"a reader without", []mailcatcher.Message{msg("a", 0), msg("b", 0)}, true},
		{"a stranger", []mailcatcher.Message{msg("a", 0), msg("b", 0), msg("c", 0), msg("d", 0)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := checkOneEach(tc.msgs, readers, kill, 1); (err != nil) != tc.wantErr {
				t.Errorf("checkOneEach = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}
