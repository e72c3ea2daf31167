package redisstore_test

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
)

// BenchmarkRecordMemory queues b.N digest-shaped messages (two 139-byte
// signed links, the List-Unsubscribe URL repeating one) in the earlier
// record layout and in the current one, each into a fresh Redis, and
// reports Redis' used_memory growth per message (record, stream entry,
// index entry) and MEMORY USAGE of one record (SAMPLES 0: every field
// counted), in the current layout also once it waits for a retry after
// greylisting:
//
//	go test -run '^$' -bench RecordMemory -benchtime 20000x ./internal/redisstore/
func BenchmarkRecordMemory(b *testing.B) {
	for _, layout := range []string{"layout1", "layout2"} {
		b.Run(layout, func(b *testing.B) {
			s, rdb, ctx := newStore(b)
			msgs := make([]queue.Message, b.N)
			for i := range msgs {
				msgs[i] = digestMessage(fmt.Sprintf("digest:01JDQ8Y5ZK3M4N5P6Q7R%06d:2026-11-30", i))
				msgs[i].Recipient = fmt.Sprintf("reader%d@example.com", i)
				msgs[i].Created = time.Now()
			}
			before := usedMemory(b, rdb)
			b.ResetTimer()
			for start := 0; start < len(msgs); start += 500 {
				batch := msgs[start:min(start+500, len(msgs))]
				if layout == "layout1" {
					for _, m := range batch {
						enqueueLayout1(ctx, b, rdb, m)
					}
				} else if _, err := s.Enqueue(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(usedMemory(b, rdb)-before)/float64(b.N), "used-B/msg")
			p := queue.Partition(msgs[0].ID, partitions)
			key := redisstore.RecordKey(p, msgs[0].ID)
			b.ReportMetric(float64(rdb.MemoryUsage(ctx, key, 0).Val()), "record-B")
			if layout == "layout2" {
				// The same record waiting for its retry after greylisting.
				e := delivery.Entry{Partition: p, Lane: msgs[0].Lane, StreamID: "0-1", MessageID: msgs[0].ID}
				r := delivery.Retry{State: queue.StateRetrying, Reason: greylisted, Due: time.Now().Add(5 * time.Minute)}
				if err := s.Retry(ctx, e, "", r, time.Now()); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(rdb.MemoryUsage(ctx, key, 0).Val()), "greylisted-record-B")
			}
		})
	}
}

// greylisted is the error a retry after Postfix's postgrey records (159 bytes).
const greylisted = "smtpmail: RCPT: relay answered 450 4.2.0 <reader0@example.com>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.com.html"

func usedMemory(b *testing.B, rdb redis.UniversalClient) int64 {
	b.Helper()
	info, err := rdb.Info(b.Context(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no used_memory in INFO memory")
	return 0
}

// redisCPU is the CPU time the Redis server behind rdb has used.
func redisCPU(b *testing.B, rdb redis.UniversalClient) time.Duration {
	b.Helper()
	info, err := rdb.Info(b.Context(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sec float64
	for _, line := range strings.Split(info, "\r\n") {
		for _, f := range []string{"used_cpu_user:", "used_cpu_sys:"} {
			if v, ok := strings.CutPrefix(line, f); ok {
				s, err := strconv.ParseFloat(v, 64)
				if err != nil {
					b.Fatal(err)
				}
				sec += s
			}
		}
	}
	return time.Duration(sec * float64(time.Second))
}

// processCPU is the CPU time this process has used (user + system).
func processCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
