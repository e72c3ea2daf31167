package poller

import (
	"net/http"
	"testing"
	"time"
)

// FuzzRateLimitHeaders feeds the Retry-After and RateLimit parsers what a
// hostile or broken server might send: whatever they return is a pause
// between 0 and MaxRetryAfter.
func FuzzRateLimitHeaders(f *testing.F) {
	now := time.Date(2026, 6, 13, 10, 0, 0, 0, time.UTC)
	f.Add("120", `"api";r=0;t=240`, "", "")
	f.Add("Sat, 13 Jun 2026 10:10:00 GMT", "", "0", "60")
	f.Add("-5", `"a";r=0;t=99999999999999999999, "b";r=3;t=1`, "x", "-1")
	f.Fuzz(func(t *testing.T, retryAfter, rateLimit, remaining, reset string) {
		if d := parseRetryAfter(retryAfter, now); d < 0 || d > MaxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %v", retryAfter, d)
		}
		h := http.Header{}
		h.Set("RateLimit", rateLimit)
		h.Set("RateLimit-Remaining", remaining)
		h.Set("RateLimit-Reset", reset)
		if d := rateLimitPause(h, now); d < 0 || d > MaxRetryAfter {
			t.Fatalf("rateLimitPause(%q, %q, %q) = %v", rateLimit, remaining, reset, d)
		}
	})
}

func TestRateLimitHeaders(t *testing.T) {
	now := time.Date(2026, 6, 13, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name                        string
		rateLimit, remaining, reset string
		want                        time.Duration
	}{
		{"HF spent", `"api";r=0;t=120`, "", "", 2 * time.Minute},
		{"HF left", `"api";r=12;t=120`, "", "", 0},
		{"two policies, one spent", `"api";r=4;t=30, "pages";r=0;t=300`, "", "", 5 * time.Minute},
		{"draft 7 spent", "", "0", "45", 45 * time.Second},
		{"draft 7 left", "", "3", "45", 0},
		{"spent without a reset", `"api";r=0`, "", "", 0},
		{"garbage", `r=zero;t=soon`, "none", "later", 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range map[string]string{"RateLimit": tt.rateLimit, "RateLimit-Remaining": tt.remaining, "RateLimit-Reset": tt.reset} {
			if v != "" {
				h.Set(k, v)
			}
		}
		if got := rateLimitPause(h, now); got != tt.want {
			t.Errorf("%s: rateLimitPause = %v, want %v", tt.name, got, tt.want)
		}
	}
}
