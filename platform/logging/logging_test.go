package logging_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/paperroute/paperroute/platform/logging"
)

func TestJSONLevels(t *testing.T) {
	var buf bytes.Buffer
	log, err := logging.New(&buf, "json", "warn")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "k", 1)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1: %q", len(lines), buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if rec["msg"] != "shown" || rec["level"] != "WARN" || rec["k"] != float64(1) {
		t.Errorf("record = %v", rec)
	}
}

func TestBadSettings(t *testing.T) {
	if _, err := logging.New(&bytes.Buffer{}, "xml", "info"); err == nil {
		t.Error("format xml accepted")
	}
	if _, err := logging.New(&bytes.Buffer{}, "text", "loud"); err == nil {
		t.Error("level loud accepted")
	}
}

func TestBufferConcurrentWrites(t *testing.T) {
	var b logging.Buffer
	log, err := logging.New(&b, "text", "info")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 100 {
				log.Info("line")
			}
		}()
	}
	for range 4 {
		<-done
	}
	if got := strings.Count(b.String(), "msg=line"); got != 400 {
		t.Errorf("Buffer kept %d lines, want 400", got)
	}
}
