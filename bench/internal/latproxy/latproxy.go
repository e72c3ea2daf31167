// Package latproxy is a TCP proxy that delays every byte by a fixed time in
// each direction, so a relay on loopback behaves like one far away: with a
// delay of 10 ms each way, every SMTP command and its reply cost a 20 ms
// round trip, while the bandwidth stays that of loopback.
package latproxy

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// Serve accepts connections on l and relays each to target, delaying data
// by delay in each direction, until ctx is done.
func Serve(ctx context.Context, l net.Listener, target string, delay time.Duration) error {
	go func() {
		<-ctx.Done()
		_ = l.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("latproxy: accept: %w", err)
		}
		wg.Go(func() { relay(ctx, c, target, delay) })
	}
}

func relay(ctx context.Context, client net.Conn, target string, delay time.Duration) {
	defer client.Close()
	var d net.Dialer
	server, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return
	}
	defer server.Close()
	stop := context.AfterFunc(ctx, func() { _ = client.Close(); _ = server.Close() })
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { pipe(server, client, delay) })
	wg.Go(func() { pipe(client, server, delay) })
	wg.Wait()
}

// chunk is data read at a moment, to be written delay later.
type chunk struct {
	due  time.Time
	data []byte
}

// pipe copies src to dst, each chunk written delay after it was read. A
// reader and a writer goroutine keep the stream flowing while chunks wait.
func pipe(dst, src net.Conn, delay time.Duration) {
	ch := make(chan chunk, 1024)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{due: time.Now().Add(delay), data: buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		if wait := time.Until(c.due); wait > 0 {
			time.Sleep(wait)
		}
		if _, err := dst.Write(c.data); err != nil {
			_ = src.Close()
			for range ch { // let the reader finish
			}
			return
		}
	}
	// src is done: pass the end of stream on.
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	} else {
		_ = dst.Close()
	}
}
