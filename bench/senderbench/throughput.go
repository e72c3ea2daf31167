package senderbench

import (
	"context"
	"fmt"
	netmail "net/mail"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/paperroute/paperroute/bench/internal/rawmail"
)

// Phase is one measured send.
type Phase struct {
	Messages int     `json:"messages"`
	Seconds  float64 `json:"seconds"`
	Rate     float64 `json:"messages_per_s"`
	CPU      CPU     `json:"cpu"`
}

// SenderPhase is the sender's send, with what only it has.
type SenderPhase struct {
	Phase
	// PeakRSSMiB is the sender process's highest resident memory (VmHWM)
	// over its whole life, start-up and the send included.
	PeakRSSMiB float64 `json:"sender_peak_rss_mib"`
	// Tx is the transactional lane's latency while the bulk send ran.
	Tx TxLatency `json:"transactional"`
}

// TxLatency is Enqueue (the call's start) to the 250 (the send time the
// sender recorded right after it) of transactional messages enqueued one
// every 100 ms during the bulk send.
type TxLatency struct {
	Count int     `json:"count"`
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

// Round is go-mail and then the sender, back to back.
type Round struct {
	Raw    Phase       `json:"gomail"`
	Sender SenderPhase `json:"sender"`
	// Ratio is the sender's rate over go-mail's.
	Ratio float64 `json:"ratio"`
}

// ThroughputResult is the throughput benchmark's JSON result.
type ThroughputResult struct {
	Benchmark string  `json:"benchmark"`
	Machine   Machine `json:"machine"`
	Sink      string  `json:"sink"`
	Messages  int     `json:"messages"`
	Conns     int     `json:"conns"`
	// WireBytes is the size of one message as go-mail writes it.
	WireBytes int      `json:"wire_bytes"`
	SenderEnv []string `json:"sender_env"`
	Rounds    []Round  `json:"rounds"`
	// Ratio is the median of the rounds' ratios.
	Ratio float64 `json:"ratio"`
}

func (e *env) rawConfig(addr string, conns, n int, run string) (rawmail.Config, error) {
	from, err := netmail.ParseAddress(fromAddress)
	if err != nil {
		return rawmail.Config{}, err
	}
	return rawmail.Config{Addr: addr, Conns: conns, From: from, MessageIDDomain: msgIDDomain, Count: n, Render: renderRaw(run)}, nil
}

func phaseTimeout(n int) time.Duration { return time.Minute + time.Duration(n)*10*time.Millisecond }

// rawPhase sends n messages with go-mail over conns connections to a new
// sink at sinkAddr ("" for a fresh one; via is where go-mail connects, ""
// for the sink itself).
func (e *env) rawPhase(ctx context.Context, n, conns int, via func(sinkAddr string) (string, func(), error)) (Phase, error) {
	ctx, cancel := context.WithTimeout(ctx, phaseTimeout(n))
	defer cancel()
	s, err := e.sinks.start(ctx, "")
	if err != nil {
		return Phase{}, err
	}
	defer stopSink(s)
	addr, m := s.Addr, newMeter(map[string]int{"sink": s.Pid(), "gomail": os.Getpid()})
	if via != nil {
		a, stop, err := via(s.Addr)
		if err != nil {
			return Phase{}, err
		}
		defer stop()
		addr = a
	}
	rc, err := e.rawConfig(addr, conns, n, runID())
	if err != nil {
		return Phase{}, err
	}
	m.begin()
	if err := rawmail.Send(ctx, rc); err != nil {
		return Phase{}, err
	}
	done, err := s.WaitFor(ctx, int64(n))
	if err != nil {
		return Phase{}, err
	}
	return finishPhase(n, m.t0, done, m.end(n, "gomail", "sink")), nil
}

func finishPhase(n int, start, done time.Time, cpu CPU) Phase {
	secs := done.Sub(start).Seconds()
	return Phase{Messages: n, Seconds: secs, Rate: float64(n) / secs, CPU: cpu}
}

// senderPhase runs a sender process against a new Redis and sink and
// measures from the first Enqueue to the last message counted at the sink,
// probing the transactional lane meanwhile.
func (e *env) senderPhase(ctx context.Context, n int, env []string, profile string, via func(sinkAddr string) (string, func(), error)) (SenderPhase, error) {
	ctx, cancel := context.WithTimeout(ctx, phaseTimeout(n))
	defer cancel()
	r, err := e.redis(ctx, "redis")
	if err != nil {
		return SenderPhase{}, err
	}
	defer r.Close()
	s, err := e.sinks.start(ctx, "")
	if err != nil {
		return SenderPhase{}, err
	}
	defer stopSink(s)
	addr := s.Addr
	if via != nil {
		a, stop, err := via(s.Addr)
		if err != nil {
			return SenderPhase{}, err
		}
		defer stop()
		addr = a
	}
	sp, err := startSender(ctx, r.URL(), addr, profile, env)
	if err != nil {
		return SenderPhase{}, err
	}
	defer sp.close()
	contentID, err := sp.putContent(ctx)
	if err != nil {
		return SenderPhase{}, err
	}
	run := runID()
	m := newMeter(map[string]int{"sender": sp.Pid(), "redis": r.Pid(), "sink": s.Pid(), "enqueuer": os.Getpid()})
	m.begin()

	probe := &txProbe{sp: sp, run: run}
	stopProbe := make(chan struct{})
	var probeDone sync.WaitGroup
	probeDone.Go(func() { probe.loop(ctx, stopProbe) })

	g, gctx := errgroup.WithContext(ctx)
	const enqueuers, batch = 2, 500
	per := (n + enqueuers - 1) / enqueuers
	for k := range enqueuers {
		g.Go(func() error { return sp.enqueueBulk(gctx, run, contentID, k*per, min(n, (k+1)*per), batch) })
	}
	if err := g.Wait(); err != nil {
		close(stopProbe)
		probeDone.Wait()
		return SenderPhase{}, err
	}
	// Probe the transactional lane while most of the bulk send runs.
	_, err = s.WaitFor(ctx, int64(n)*9/10)
	close(stopProbe)
	probeDone.Wait()
	if err != nil {
		return SenderPhase{}, err
	}
	if probe.err != nil {
		return SenderPhase{}, probe.err
	}
	done, err := s.WaitFor(ctx, int64(n+len(probe.sent)))
	if err != nil {
		return SenderPhase{}, err
	}
	res := SenderPhase{Phase: finishPhase(n, m.t0, done, m.end(n, "sender", "redis", "sink"))}
	if profile != "" {
		// Where Redis spent its time, beside the sender's profile.
		if stats, err := r.Client.Info(ctx, "commandstats").Result(); err == nil {
			_ = os.WriteFile(profile+".redis-commandstats.txt", []byte(stats), 0o644)
		}
	}
	if u, err := sp.Usage(); err == nil {
		res.PeakRSSMiB = mib(u.PeakRSS)
	}
	res.Tx, err = probe.latency(ctx)
	if err != nil {
		return SenderPhase{}, err
	}
	return res, nil
}

// txProbe enqueues a transactional message every 100 ms.
type txProbe struct {
	sp   *senderProc
	run  string
	sent []txSent
	err  error
}

type txSent struct {
	key string
	at  time.Time
}

func (p *txProbe) loop(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		key := "tx:" + p.run + ":" + strconv.Itoa(i)
		at := time.Now()
		if err := p.sp.enqueueTx(ctx, key, i); err != nil {
			p.err = err
			return
		}
		p.sent = append(p.sent, txSent{key: key, at: at})
		select {
		case <-t.C:
		case <-stop:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (p *txProbe) latency(ctx context.Context) (TxLatency, error) {
	var ms []float64
	for _, s := range p.sent {
		var sent time.Time
		var err error
		// The record is written right after the 250; wait for it briefly.
		for range 100 {
			if sent, err = p.sp.sendTime(ctx, s.key); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			return TxLatency{}, err
		}
		ms = append(ms, float64(sent.Sub(s.at).Microseconds())/1000)
	}
	if len(ms) == 0 {
		return TxLatency{}, nil
	}
	slices.Sort(ms)
	q := func(f float64) float64 { return ms[min(len(ms)-1, int(f*float64(len(ms))))] }
	return TxLatency{Count: len(ms), P50Ms: q(0.50), P99Ms: q(0.99), MaxMs: ms[len(ms)-1]}, nil
}

// senderEnv configures the sender for conns SMTP connections shared by
// workers delivery workers (SENDER_SMTP_CONNECTIONS).
func (e *env) senderEnv(conns, workers int, extra ...string) []string {
	env := []string{
		"SENDER_SMTP_CONNECTIONS=" + strconv.Itoa(conns),
		"SENDER_WORKERS=" + strconv.Itoa(workers),
		"SENDER_PARTITIONS=4",
	}
	env = append(env, e.cfg.SenderEnv...)
	return append(env, extra...)
}

func (e *env) throughput(ctx context.Context) error {
	cfg := e.cfg
	rc, err := e.rawConfig("127.0.0.1:25", cfg.Conns, 1, "size")
	if err != nil {
		return err
	}
	size, err := rawmail.Size(rc, rc.Render(0))
	if err != nil {
		return err
	}
	res := ThroughputResult{
		Benchmark: "throughput", Machine: machine(), Sink: string(e.sinks.kind),
		Messages: cfg.Messages, Conns: cfg.Conns, WireBytes: size, SenderEnv: e.senderEnv(cfg.Conns, cfg.Workers),
	}
	var ratios []float64
	for round := range cfg.Rounds {
		raw, err := e.rawPhase(ctx, cfg.Messages, cfg.Conns, nil)
		if err != nil {
			return fmt.Errorf("go-mail: %w", err)
		}
		profile := ""
		if round == 0 {
			profile = cfg.CPUProfile
		}
		snd, err := e.senderPhase(ctx, cfg.Messages, e.senderEnv(cfg.Conns, cfg.Workers), profile, nil)
		if err != nil {
			return fmt.Errorf("sender: %w", err)
		}
		r := Round{Raw: raw, Sender: snd, Ratio: snd.Rate / raw.Rate}
		res.Rounds = append(res.Rounds, r)
		ratios = append(ratios, r.Ratio)
		fmt.Fprintf(cfg.Out, "throughput round %d: go-mail %.0f msg/s (%.1f CPU-s/100k) | sender %.0f msg/s (%.1f CPU-s/100k, peak RSS %.0f MiB, tx p99 %.0f ms) | ratio %.2f\n",
			round+1, raw.Rate, raw.CPU.Per100k, snd.Rate, snd.CPU.Per100k, snd.PeakRSSMiB, snd.Tx.P99Ms, r.Ratio)
	}
	slices.Sort(ratios)
	res.Ratio = ratios[len(ratios)/2]
	path, err := writeResult(cfg.OutDir, "throughput", res)
	if err != nil {
		return err
	}
	last := res.Rounds[len(res.Rounds)-1]
	fmt.Fprintf(cfg.Out, "BENCH throughput sink=%s messages=%d conns=%d size=%dB gomail=%.0f/s sender=%.0f/s ratio=%.2f sender_cpu_per_100k=%.1fs sender_peak_rss=%.0fMiB tx_p99=%.0fms load=%.2f result=%s\n",
		res.Sink, res.Messages, res.Conns, res.WireBytes, last.Raw.Rate, last.Sender.Rate, res.Ratio,
		last.Sender.CPU.Per100k, last.Sender.PeakRSSMiB, last.Sender.Tx.P99Ms, res.Machine.LoadAvg, path)
	return nil
}
