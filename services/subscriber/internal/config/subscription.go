package config

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// DefaultTopics is the built-in topic catalogue, used when
// SUBSCRIBER_TOPICS_FILE is not set. It names the arXiv areas the digest's
// default sources cover; an operator whose digest serves another catalogue
// points SUBSCRIBER_TOPICS_FILE at the same file the digest reads.
func DefaultTopics() []subscription.Topic {
	return []subscription.Topic{
		{ID: "llm", Label: "Large language models"},
		{ID: "agents", Label: "Agents and tool use"},
		{ID: "reasoning", Label: "Reasoning"},
		{ID: "multimodal", Label: "Multimodal models"},
		{ID: "vision", Label: "Computer vision"},
		{ID: "diffusion", Label: "Diffusion and image generation"},
		{ID: "video", Label: "Video generation and understanding"},
		{ID: "speech", Label: "Speech and audio"},
		{ID: "rl", Label: "Reinforcement learning"},
		{ID: "robotics", Label: "Robotics and embodied AI"},
		{ID: "efficiency", Label: "Efficient training and inference"},
		{ID: "safety", Label: "Safety, alignment and evaluation"},
		{ID: "retrieval", Label: "Retrieval and RAG"},
		{ID: "code", Label: "Code generation"},
		{ID: "science", Label: "AI for science"},
		{ID: "3d", Label: "3D and graphics"},
	}
}

// loadSubscription reads the settings of the subscription domain.
func loadSubscription(cfg *Config, e env, bad func(name, format string, args ...any)) {
	cfg.Topics = DefaultTopics()
	if e.TopicsFile != "" {
		t, err := readTopics(e.TopicsFile)
		if err != nil {
			bad("SUBSCRIBER_TOPICS_FILE", "%v", err)
		}
		cfg.Topics = t
	}
	dur := func(name, v string, min time.Duration) time.Duration {
		d, err := time.ParseDuration(v)
		if err != nil || d < min {
			bad(name, "%q is not a duration of at least %s (like 168h)", v, min)
		}
		return d
	}
	cfg.PendingTTL = dur("SUBSCRIBER_PENDING_TTL", e.PendingTTL, time.Hour)
	if e.Retention != "0" {
		cfg.ClientDataRetention = dur("SUBSCRIBER_CLIENT_DATA_RETENTION", e.Retention, time.Hour)
	}
	h, err := strconv.Atoi(e.DefaultHour)
	if err != nil || h < 0 || h > 23 {
		bad("SUBSCRIBER_DEFAULT_DELIVERY_HOUR", "%q is not an hour 0-23", e.DefaultHour)
	}
	cfg.DefaultDeliveryHour = h
	if _, err := subscription.LoadLocation(e.DefaultTimezone); err != nil {
		bad("SUBSCRIBER_DEFAULT_TIMEZONE", "%q is not an IANA time zone", e.DefaultTimezone)
	}
	cfg.DefaultTimezone = e.DefaultTimezone
	limit := func(name, v string) subscription.Limit {
		l, err := ParseLimit(v)
		if err != nil {
			bad(name, "%v", err)
		}
		return l
	}
	cfg.Limits = subscription.Limits{
		PerIP:      limit("SUBSCRIBER_LIMIT_PER_IP", e.LimitIP),
		PerNetwork: limit("SUBSCRIBER_LIMIT_PER_NETWORK", e.LimitNetwork),
		PerMailbox: limit("SUBSCRIBER_LIMIT_PER_MAILBOX", e.LimitMailbox),
		Global:     limit("SUBSCRIBER_LIMIT_GLOBAL", e.LimitGlobal),
	}
}

// ParseLimit reads "<count>/<period>" (burst = count) or "off".
func ParseLimit(v string) (subscription.Limit, error) {
	if v == "off" {
		return subscription.Limit{}, nil
	}
	n, p, ok := strings.Cut(v, "/")
	count, err := strconv.Atoi(n)
	if !ok || err != nil || count <= 0 {
		return subscription.Limit{}, fmt.Errorf("%q is not <count>/<period> like 3/24h, or off", v)
	}
	d, err := time.ParseDuration(p)
	if err != nil || d < time.Second {
		return subscription.Limit{}, fmt.Errorf("%q: period %q is not a duration of at least 1s", v, p)
	}
	return subscription.Limit{Rate: count, Burst: count, Period: d}, nil
}

// readTopics reads a catalogue file: a JSON array of {"id", "label"}.
func readTopics(path string) ([]subscription.Topic, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw []struct {
		ID    string `json:"id"`
		Label string `json:"label"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := make([]subscription.Topic, 0, len(raw))
	seen := map[string]bool{}
	for i, t := range raw {
		if t.ID == "" || len(t.ID) > 64 || seen[t.ID] {
			return nil, fmt.Errorf("%s: topic %d: id %q is empty, too long or repeated", path, i, t.ID)
		}
		seen[t.ID] = true
		if t.Label == "" {
			t.Label = t.ID
		}
		out = append(out, subscription.Topic{ID: t.ID, Label: t.Label})
	}
	return out, nil
}
