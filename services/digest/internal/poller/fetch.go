package poller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/paperroute/paperroute/platform/validation"
)

// result is how one fetch and import went.
type result struct {
	outcome          string
	err              error
	created, updated int
	retryAfter       time.Duration
}

// fetchAndImport fetches one URL and imports the body.
func (p *Poller) fetchAndImport(ctx context.Context, src Source, u string) result {
	start := p.cfg.Clock.Now()
	body, retryAfter, outcome, err := p.fetch(ctx, src, u)
	res := result{outcome: outcome, err: err, retryAfter: retryAfter}
	if err == nil {
		imp, ierr := p.cfg.Importer.Import(ctx, src.Format(), body)
		switch {
		case ierr == nil:
			res.created, res.updated = imp.Created, imp.Updated
			p.cfg.Metrics.Papers(src.Name, imp.Created, imp.Updated)
		case isInvalid(ierr):
			res.outcome, res.err = "invalid", ierr
		default:
			res.outcome, res.err = "store_error", ierr
		}
	}
	p.cfg.Metrics.Request(src.Name, res.outcome, p.cfg.Clock.Now().Sub(start))
	return res
}

// isInvalid reports whether the importer refused the document itself.
func isInvalid(err error) bool {
	var verr *validation.Error
	return errors.As(err, &verr)
}

// fetch GETs u within the configured timeout. retryAfter is set when the
// server asks for a pause (429 or 503 with Retry-After, or RateLimit
// headers saying nothing remains), whatever the status.
func (p *Poller) fetch(ctx context.Context, src Source, u string) (body []byte, retryAfter time.Duration, outcome string, err error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, "network", fmt.Errorf("poller: request %s: %w", u, err)
	}
	if p.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", p.cfg.UserAgent)
	}
	accept := "application/json"
	if src.Kind == KindArxiv {
		accept = "application/atom+xml, application/xml;q=0.9"
	}
	req.Header.Set("Accept", accept)
	resp, err := p.cfg.HTTP.Do(req)
	if err != nil {
		return nil, 0, transportOutcome(ctx, err), fmt.Errorf("poller: GET %s: %w", u, err)
	}
	defer resp.Body.Close()

	now := p.cfg.Clock.Now()
	retryAfter = rateLimitPause(resp.Header, now)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		ra := parseRetryAfter(resp.Header.Get("Retry-After"), now)
		if resp.StatusCode == http.StatusTooManyRequests && ra == 0 && retryAfter == 0 {
			ra = DefaultBackoff // a 429 without a hint still means: slow down
		}
		retryAfter = max(retryAfter, ra)
	}
	retryAfter = min(retryAfter, MaxRetryAfter)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return nil, retryAfter, "rate_limited", fmt.Errorf("poller: GET %s: 429 Too Many Requests (retry after %v)", u, retryAfter)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return nil, retryAfter, "http_error", fmt.Errorf("poller: GET %s: %s", u, resp.Status)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/html" {
		return nil, retryAfter, "invalid", fmt.Errorf("poller: GET %s: served an HTML page, not a %s document", u, src.Format())
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, int64(p.cfg.MaxBodyBytes)+1))
	if err != nil {
		return nil, retryAfter, transportOutcome(ctx, err), fmt.Errorf("poller: GET %s: reading the body: %w", u, err)
	}
	if len(body) > p.cfg.MaxBodyBytes {
		return nil, retryAfter, "too_large", fmt.Errorf("poller: GET %s: the body is larger than %d bytes", u, p.cfg.MaxBodyBytes)
	}
	return body, retryAfter, "ok", nil
}

func transportOutcome(ctx context.Context, err error) string {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "timeout"
	}
	return "network"
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date
// (RFC 9110 §10.2.3). Anything else, or a time in the past, is 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return min(time.Duration(min(secs, int64(MaxRetryAfter/time.Second)))*time.Second, MaxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), MaxRetryAfter)
	}
	return 0
}

// rateLimitPause reads the IETF RateLimit headers, in both drafts seen in
// the wild — `RateLimit: "name";r=0;t=120` (Hugging Face) and
// `RateLimit-Remaining: 0` with `RateLimit-Reset: 120` — and returns how
// long to pause when nothing remains; 0 otherwise.
func rateLimitPause(h http.Header, now time.Time) time.Duration {
	remaining, reset := -1, -1
	if v := h.Get("RateLimit"); v != "" {
		for _, item := range strings.Split(v, ",") {
			for _, param := range strings.Split(item, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(param), "=")
				if !ok {
					continue
				}
				n, err := strconv.Atoi(strings.Trim(val, `"`))
				if err != nil || n < 0 {
					continue
				}
				switch k {
				case "r":
					if remaining < 0 || n < remaining {
						remaining = n
					}
				case "t":
					reset = max(reset, n)
				}
			}
		}
	}
	if v := h.Get("RateLimit-Remaining"); v != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
			remaining = n
		}
	}
	if v := h.Get("RateLimit-Reset"); v != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
			reset = n
		}
	}
	if remaining != 0 || reset <= 0 {
		return 0
	}
	return parseRetryAfter(strconv.Itoa(reset), now)
}
