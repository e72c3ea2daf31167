package senderbench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/paperroute/paperroute/bench/internal/proc"
)

// Machine describes where and when a benchmark ran.
type Machine struct {
	Host      string    `json:"host"`
	CPUs      int       `json:"cpus"`
	CPUModel  string    `json:"cpu_model"`
	GoVersion string    `json:"go_version"`
	Time      time.Time `json:"time"`
	// LoadAvg is the 1-minute load average at the start: above the CPU
	// count, other work shared the cores.
	LoadAvg float64 `json:"load_avg_1m"`
}

func machine() Machine {
	host, _ := os.Hostname()
	m := Machine{Host: host, CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Time: time.Now().UTC()}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			m.LoadAvg, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return m
}

// machineCPU is the whole machine's busy CPU time so far (all cores, from
// /proc/stat: everything but idle and iowait), whoever spent it.
func machineCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / 100
}

// meter measures the CPU time of a set of processes over a phase.
type meter struct {
	names []string
	pids  []int
	start []proc.Usage
	mach  time.Duration
	t0    time.Time
}

func newMeter(procs map[string]int) *meter {
	m := &meter{}
	for name, pid := range procs {
		m.names = append(m.names, name)
		m.pids = append(m.pids, pid)
	}
	return m
}

func (m *meter) begin() {
	m.start = make([]proc.Usage, len(m.pids))
	for i, pid := range m.pids {
		m.start[i], _ = proc.Read(pid)
	}
	m.mach = machineCPU()
	m.t0 = time.Now()
}

// CPU is a phase's CPU time in seconds, per process and in total.
type CPU struct {
	// PerProcess is each measured process's user + system time.
	PerProcess map[string]float64 `json:"per_process_s"`
	// Measured is the sum of the measured processes that do the work
	// being compared (never the load generator).
	Measured float64 `json:"measured_s"`
	// Per100k is Measured scaled to 100,000 messages.
	Per100k float64 `json:"measured_per_100k_s"`
	// Machine is the busy time of the whole machine over the phase, other
	// users of the cores included.
	Machine float64 `json:"machine_s"`
}

// end reads the usage again; work names the processes that count in
// Measured.
func (m *meter) end(messages int, work ...string) CPU {
	c := CPU{PerProcess: map[string]float64{}, Machine: (machineCPU() - m.mach).Seconds()}
	for i, pid := range m.pids {
		u, _ := proc.Read(pid)
		s := (u.CPU - m.start[i].CPU).Seconds()
		c.PerProcess[m.names[i]] = s
		for _, w := range work {
			if w == m.names[i] {
				c.Measured += s
			}
		}
	}
	if messages > 0 {
		c.Per100k = c.Measured * 100000 / float64(messages)
	}
	return c
}

// writeResult writes v as JSON to dir/<name>-<time>.json and returns the
// path.
func writeResult(dir, name string, v any) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("senderbench: %w", err)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", fmt.Errorf("senderbench: %w", err)
	}
	path := filepath.Join(dir, name+"-"+time.Now().UTC().Format("20060102T150405Z")+".json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("senderbench: %w", err)
	}
	return path, nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
