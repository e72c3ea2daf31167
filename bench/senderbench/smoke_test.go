package senderbench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	RunRole() // the test binary is also the benchmark's child processes
	os.Exit(m.Run())
}

// TestSmoke runs every benchmark at a tiny size against the go-smtp sink
// (no download needed) and checks that each printed its summary line and
// wrote a result that says the mail arrived. It measures nothing.
func TestSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	dir := t.TempDir()
	err := Run(ctx, Config{
		Benchmarks: Benchmarks, Messages: 200, Conns: 2, Workers: 8, Rounds: 1,
		MemoryMessages: 100, LatencyMessages: 100, LatencyConns: 8, LatencyWorkers: 12, RTT: 4 * time.Millisecond,
		Sink: "go-smtp", OutDir: dir, Out: &out,
	})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	for _, b := range Benchmarks {
		if !strings.Contains(out.String(), "BENCH "+b+" ") {
			t.Errorf("no summary line for %s in:\n%s", b, out.String())
		}
	}

	var tp ThroughputResult
	readResult(t, dir, "throughput", &tp)
	r := tp.Rounds[0]
	if r.Raw.Messages != 200 || r.Sender.Messages != 200 || r.Raw.Rate <= 0 || r.Sender.Rate <= 0 || tp.Ratio <= 0 {
		t.Errorf("throughput result: %+v", tp)
	}
	if r.Sender.Tx.Count < 1 || r.Sender.Tx.P99Ms <= 0 {
		t.Errorf("no transactional latency measured: %+v", r.Sender.Tx)
	}
	if r.Sender.PeakRSSMiB <= 0 || r.Sender.CPU.PerProcess["redis"] <= 0 && r.Sender.CPU.PerProcess["sender"] <= 0 {
		t.Errorf("no process usage read: %+v", r.Sender)
	}

	var mem MemoryResult
	readResult(t, dir, "redis-memory", &mem)
	if mem.QueuedBytes <= 0 || mem.Samples["snd:msg:*"] <= 0 {
		t.Errorf("memory result: %+v", mem)
	}

	var lat LatencyResult
	readResult(t, dir, "latency", &lat)
	if lat.Limit != 8/(4*0.004) || lat.Sender.Rate <= 0 || lat.Raw.Rate <= 0 {
		t.Errorf("latency result: %+v", lat)
	}
}

func readResult(t *testing.T, dir, name string, v any) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, name+"-*.json"))
	if len(files) != 1 {
		t.Fatalf("want one %s result file, have %v", name, files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", files[0], err)
	}
}
