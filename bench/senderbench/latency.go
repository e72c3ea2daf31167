package senderbench

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/paperroute/paperroute/bench/internal/proc"
	"github.com/paperroute/paperroute/bench/internal/redisproc"
)

// Round trips one message costs on an open connection: go-mail (NOOP and
// RSET off, no PIPELINING) waits for the reply to MAIL, RCPT, DATA and the
// final dot; the sender, when the relay announces PIPELINING (smtp-sink and
// go-smtp do), writes a message, its final dot and the next waiting
// worker's MAIL, RCPT and DATA in one write: one round trip per message
// while a worker is waiting for each connection (hence twice as many
// workers as connections by default).
const (
	goMailRoundTrips = 4
	senderRoundTrips = 1
)

// LatencyResult is the latency benchmark's JSON result.
type LatencyResult struct {
	Benchmark string  `json:"benchmark"`
	Machine   Machine `json:"machine"`
	Sink      string  `json:"sink"`
	Messages  int     `json:"messages"`
	Conns     int     `json:"conns"`
	RTTMs     float64 `json:"rtt_ms"`
	// Limit is conns / (round trips per message × RTT) with go-mail's 4
	// round trips: what the connections can carry at most.
	Limit float64 `json:"limit_messages_per_s"`
	// SenderLimit is the same with the sender's 1 round trip.
	SenderLimit float64     `json:"sender_limit_messages_per_s"`
	Raw         Phase       `json:"gomail"`
	Sender      SenderPhase `json:"sender"`
	SenderEnv   []string    `json:"sender_env"`
	// RawOfLimit and SenderOfLimit are the rates as fractions of their
	// limits (Limit and SenderLimit).
	RawOfLimit    float64 `json:"gomail_of_limit"`
	SenderOfLimit float64 `json:"sender_of_limit"`
}

// latency puts the sink behind a proxy that delays each direction by RTT/2
// and sends over many connections, with go-mail and with the sender.
func (e *env) latency(ctx context.Context) error {
	cfg := e.cfg
	via := func(sinkAddr string) (string, func(), error) { return startProxy(ctx, sinkAddr, cfg.RTT/2) }
	raw, err := e.rawPhase(ctx, cfg.LatencyMessages, cfg.LatencyConns, via)
	if err != nil {
		return fmt.Errorf("go-mail: %w", err)
	}
	env := e.senderEnv(cfg.LatencyConns, cfg.LatencyWorkers, cfg.LatencySenderEnv...)
	snd, err := e.senderPhase(ctx, cfg.LatencyMessages, env, "", via)
	if err != nil {
		return fmt.Errorf("sender: %w", err)
	}
	limit := float64(cfg.LatencyConns) / (goMailRoundTrips * cfg.RTT.Seconds())
	senderLimit := float64(cfg.LatencyConns) / (senderRoundTrips * cfg.RTT.Seconds())
	res := LatencyResult{
		Benchmark: "latency", Machine: machine(), Sink: string(e.sinks.kind),
		Messages: cfg.LatencyMessages, Conns: cfg.LatencyConns, RTTMs: float64(cfg.RTT.Microseconds()) / 1000,
		Limit: limit, SenderLimit: senderLimit, Raw: raw, Sender: snd, SenderEnv: env,
		RawOfLimit: raw.Rate / limit, SenderOfLimit: snd.Rate / senderLimit,
	}
	path, err := writeResult(cfg.OutDir, "latency", res)
	if err != nil {
		return err
	}
	fmt.Fprintf(cfg.Out, "BENCH latency rtt=%s conns=%d messages=%d gomail=%.0f/s (limit %.0f/s at %d round trips: %.2f) sender=%.0f/s (limit %.0f/s at %d round trips: %.2f) ratio=%.2f sender_cpu_per_100k=%.1fs tx_p99=%.0fms result=%s\n",
		cfg.RTT, cfg.LatencyConns, cfg.LatencyMessages, raw.Rate, limit, goMailRoundTrips, res.RawOfLimit,
		snd.Rate, senderLimit, senderRoundTrips, res.SenderOfLimit, snd.Rate/raw.Rate, snd.CPU.Per100k, snd.Tx.P99Ms, path)
	return nil
}

// startProxy runs the latency proxy in a process of its own in front of
// target and returns its address.
func startProxy(ctx context.Context, target string, delay time.Duration) (string, func(), error) {
	port, err := redisproc.FreePort()
	if err != nil {
		return "", nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd, err := roleCommand("proxy", addrEnv+"="+addr, targetEnv+"="+target, delayEnv+"="+delay.String())
	if err != nil {
		return "", nil, err
	}
	p, err := proc.Start(ctx, "proxy", cmd)
	if err != nil {
		return "", nil, err
	}
	stop := func() { _ = p.Stop(2 * time.Second) }
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return addr, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("proxy not listening: %w: %s", err, p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
