package redisstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/redisstore"
)

// signedLink is shaped like the subscriber service's links: 139 bytes.
func signedLink(page string) string {
	return "https://paperroute.example/" + page + "?token=k1." + strings.Repeat("AQKx", 12)[:47] + "." + strings.Repeat("Ab3_", 11)[:43]
}

// digestMessage is a message as the digest queues it: two signed links as
// variables, the List-Unsubscribe URL repeating one of them.
func digestMessage(key string) queue.Message {
	m := message(key, queue.LaneBulk)
	m.Variables = map[string]string{"unsubscribe_url": signedLink("unsubscribe"), "manage_url": signedLink("preferences")}
	m.ListUnsubscribeURL = m.Variables["unsubscribe_url"]
	return m
}

// TestRecordStaysAListpack checks that the records of ordinary messages
// keep every value within Redis' default hash-max-listpack-value, so Redis
// stores them compactly, and that they read back as queued.
func TestRecordStaysAListpack(t *testing.T) {
	t.Parallel()
	s, rdb, ctx := newStore(t)
	traced := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled,
	}))
	long := message("url not a variable", queue.LaneBulk)
	long.ListUnsubscribeURL = signedLink("unsubscribe") + "&list=" + strings.Repeat("x", 100)
	long.Variables = map[string]string{"name": "Ada & <Bob>", "ünïcode": strings.Repeat("é", 40)}
	tx := message("transactional", queue.LaneTransactional)
	tx.Variables = nil
	big := digestMessage("variables of 4 KB")
	big.Variables["blob"] = strings.Repeat("z", 4000)
	wants := map[string]queue.Message{}
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		m        queue.Message
		encoding string
	}{
		{"digest", ctx, digestMessage("digest:01JDQ8Y5ZK3M4N5P6Q7R000001:2026-11-30"), "listpack"},
		{"traced digest", traced, digestMessage("traced"), "listpack"},
		{"URL not among the variables", ctx, long, "listpack"},
		{"no variables", ctx, tx, "listpack"},
		{"variables too long for a listpack", ctx, big, "hashtable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Enqueue(tc.ctx, []queue.Message{tc.m}); err != nil {
				t.Fatal(err)
			}
			want := tc.m
			want.TraceParent = redisTraceParent(tc.ctx)
			got, err := s.GetMessage(ctx, want.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GetMessage (-want +got):\n%s", diff)
			}
			wants[want.ID] = want
			key := redisstore.RecordKey(queue.Partition(want.ID, partitions), want.ID)
			if enc := rdb.ObjectEncoding(ctx, key).Val(); enc != tc.encoding {
				t.Errorf("record encoding = %q, want %q", enc, tc.encoding)
			}
		})
	}
	listed, _, err := s.ListMessages(ctx, queue.ListFilter{Recipient: "r@example.com"}, nil, 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != len(wants) {
		t.Errorf("ListMessages = %d messages, want %d", len(listed), len(wants))
	}
	for _, m := range listed {
		if diff := cmp.Diff(wants[m.ID], m); diff != "" {
			t.Errorf("ListMessages (-want +got):\n%s", diff)
		}
	}
}

func redisTraceParent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"
}

// layout1Enqueue is the enqueue script of the version before record layout
// 2, verbatim: it writes records as they are queued in Redis when an
// upgraded sender starts.
var layout1Enqueue = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'key', 'nonce')
if cur[1] then
  if cur[1] ~= ARGV[1] then return -1 end
  if cur[2] == ARGV[9] then return 1 end
  return 0
end
redis.call('HSET', KEYS[1],
  'key', ARGV[1], 'rcpt', ARGV[2], 'lane', ARGV[3], 'content', ARGV[4],
  'vars', ARGV[5], 'unsub', ARGV[6], 'state', 'QUEUED', 'attempts', 0,
  'created', ARGV[7], 'updated', ARGV[7], 'nonce', ARGV[9])
if ARGV[10] and ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'tp', ARGV[10]) end
redis.call('XADD', KEYS[2], '*', 'id', ARGV[8])
if KEYS[3] then redis.call('ZADD', KEYS[3], ARGV[7], ARGV[8]) end
return 1
`)

func enqueueLayout1(ctx context.Context, t testing.TB, rdb redis.UniversalClient, m queue.Message) {
	t.Helper()
	vars, err := json.Marshal(m.Variables)
	if err != nil {
		t.Fatal(err)
	}
	p := queue.Partition(m.ID, partitions)
	keys := []string{redisstore.RecordKey(p, m.ID), redisstore.StreamKey(m.Lane, p), redisstore.IndexKey(p)}
	args := []any{m.IdempotencyKey, m.Recipient, m.Lane.String(), m.ContentID, string(vars),
		m.ListUnsubscribeURL, m.Created.UnixMilli(), m.ID, "old-nonce-0", m.TraceParent}
	if err := layout1Enqueue.Run(ctx, rdb, keys, args...).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestRecordsOfTheEarlierLayout checks what an upgrade meets: messages
// queued by the earlier version are shown as before, recognised as
// duplicates, and delivered to the end.
func TestRecordsOfTheEarlierLayout(t *testing.T) {
	t.Parallel()
	s, rdb, ctx := newStore(t)
	// One message of each lane in partition 0, so one Read sees both.
	var old []queue.Message
	for i := 0; len(old) < 3; i++ {
		if key := fmt.Sprintf("digest:%d:2026-11-29", i); queue.Partition(queue.MessageID(key), partitions) == 0 {
			m := digestMessage(key)
			m.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
			old = append(old, m)
		}
	}
	for _, m := range old {
		enqueueLayout1(ctx, t, rdb, m)
	}
	if enc := rdb.ObjectEncoding(ctx, redisstore.RecordKey(0, old[0].ID)).Val(); enc != "hashtable" {
		t.Fatalf("a layout 1 digest record is a %s; the test means to start from the old size", enc)
	}

	t.Run("shown as before", func(t *testing.T) {
		for _, m := range old {
			got, err := s.GetMessage(ctx, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(m, got); diff != "" {
				t.Errorf("GetMessage (-want +got):\n%s", diff)
			}
		}
		listed, _, err := s.ListMessages(ctx, queue.ListFilter{}, nil, 10, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(listed) != len(old) || listed[0].ListUnsubscribeURL == "" || len(listed[0].Variables) != 2 {
			t.Errorf("ListMessages = %+v", listed)
		}
	})

	t.Run("a repeated key is a duplicate", func(t *testing.T) {
		created, err := s.Enqueue(ctx, old)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range created {
			if c {
				t.Errorf("message %d queued a second time", i)
			}
		}
	})

	t.Run("delivered", func(t *testing.T) {
		ra := redisstore.NewReadAhead(s)
		entries, err := ra.Read(ctx, 0, "new", 10, 10*time.Millisecond)
		if err != nil || len(entries) != len(old) {
			t.Fatalf("Read = %v, %v; want %d entries", entries, err, len(old))
		}
		at := time.UnixMilli(1_750_000_123_000)
		for i, e := range entries {
			m, err := ra.GetMessage(ctx, e.MessageID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(old[i], m); diff != "" {
				t.Errorf("read ahead (-want +got):\n%s", diff)
			}
			l, err := s.Lease(ctx, e, delivery.LeaseRequest{Consumer: "new", Duration: time.Minute, At: at, Recipient: m.Recipient})
			if err != nil || l.Result != delivery.LeaseAcquired || l.Attempts != 1 {
				t.Fatalf("Lease = %+v, %v; want acquired, attempt 1", l, err)
			}
			if err := s.MarkSent(ctx, e, "250 ok", at); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetMessage(ctx, e.MessageID)
			if err != nil {
				t.Fatal(err)
			}
			want := old[i]
			want.State, want.Attempts, want.Sent, want.Updated, want.Reply = queue.StateSent, 1, at, at, "250 ok"
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("sent (-want +got):\n%s", diff)
			}
		}
		if n, err := rdb.XPending(ctx, redisstore.StreamKey(queue.LaneBulk, 0), redisstore.Group).Result(); err != nil || n.Count != 0 {
			t.Errorf("pending after the sends = %+v, %v; want none", n, err)
		}
	})
}

// TestEarlierVersionRefusesNewRecords checks the property a rolling
// upgrade relies on: the earlier version's reader (the checks of its
// decodeRecord, below) fails on a layout 2 record — the entry stays
// pending for an upgraded replica — rather than reading it without its
// variables and sending the mail with empty links.
func TestEarlierVersionRefusesNewRecords(t *testing.T) {
	t.Parallel()
	s, rdb, ctx := newStore(t)
	m := digestMessage("digest:new:2026-11-30")
	if _, err := s.Enqueue(ctx, []queue.Message{m}); err != nil {
		t.Fatal(err)
	}
	v, err := rdb.HGetAll(ctx, redisstore.RecordKey(queue.Partition(m.ID, partitions), m.ID)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := queue.ParseLane(v["lane"]); !ok {
		t.Fatalf("lane %q", v["lane"])
	}
	if _, ok := queue.ParseState(v["state"]); !ok {
		t.Fatalf("state %q", v["state"])
	}
	var vars map[string]string
	if v["vars"] == "" {
		t.Fatal("no vars field: the earlier version would read the record without variables")
	}
	if err := json.Unmarshal([]byte(v["vars"]), &vars); err == nil {
		t.Errorf("the earlier version reads vars %q as variables %v", v["vars"], vars)
	}
}
