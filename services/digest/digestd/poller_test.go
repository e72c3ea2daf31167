package digestd_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
)

// TestPollerImportsFromTheConfiguredSource runs the service with
// DIGEST_SOURCES pointing at a local stand-in for the daily papers API and
// waits for the papers to arrive by themselves.
func TestPollerImportsFromTheConfiguredSource(t *testing.T) {
	doc := readFixture(t)
	var requests atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.URL.Path != "/api/daily_papers" || r.URL.Query().Get("date") == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}))
	defer api.Close()
	s := start(t, map[string]string{"DIGEST_SOURCES": "hf:" + api.URL + "/api/daily_papers", "DIGEST_POLL_DAYS": "2"})

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := s.client.ListPapers(context.Background(), &digestv1.ListPapersRequest{FeaturedDay: "2026-06-12"})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetPapers()) == 30 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s %d papers of 2026-06-12 stored (%d requests to the source), want 30", len(resp.GetPapers()), requests.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The round is counted once both days were fetched.
	for {
		resp, err := http.Get(s.httpURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), `digest_poller_requests_total{outcome="ok",source="hf"} 2`) &&
			strings.Contains(string(body), "digest_poller_leader 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks two ok fetches and the leader gauge:\n%s", grepLines(string(body), "digest_poller"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := s.rdb.Exists(context.Background(), "dig:poller:lease").Val(); n != 1 {
		t.Errorf("dig:poller:lease exists = %d, want the lease held while polling", n)
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
