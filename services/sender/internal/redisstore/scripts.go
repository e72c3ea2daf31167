package redisstore

import "github.com/redis/go-redis/v9"

// Every script touches only keys of one partition (hash tag {p}).

// enqueueScript creates a message record and its stream entry unless the
// record exists.
//
//	KEYS: record, stream
//	ARGV: idempotency key, recipient, lane, content id, variables JSON,
//	      unsubscribe URL, created (unix ms), message id, nonce
//	returns 1 created (now or by this same call before), 0 duplicate,
//	        -1 the record belongs to a different idempotency key
var enqueueScript = redis.NewScript(`
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
redis.call('XADD', KEYS[2], '*', 'id', ARGV[8])
return 1
`)

// startAttemptScript counts a delivery attempt of an existing record.
//
//	KEYS: record
//	ARGV: now (unix ms)
//	returns the new attempt count, or -1 if the record does not exist
var startAttemptScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HSET', KEYS[1], 'updated', ARGV[1])
return redis.call('HINCRBY', KEYS[1], 'attempts', 1)
`)

// finishScript records the final state of a queued message, counts it,
// lets the record expire and acknowledges the entry, atomically. A message
// that is already finished is only acknowledged, so a retried call counts
// nothing twice.
//
//	KEYS: record, stream, stats
//	ARGV: group, entry id, final state (SENT|DEAD), counter field,
//	      now (unix ms), record TTL (s), last error ("" keeps the old one)
var finishScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'state') == 'QUEUED' then
  redis.call('HSET', KEYS[1], 'state', ARGV[3], 'updated', ARGV[5])
  if ARGV[3] == 'SENT' then
    redis.call('HSET', KEYS[1], 'sent', ARGV[5])
  end
  if ARGV[7] ~= '' then
    redis.call('HSET', KEYS[1], 'error', ARGV[7])
  end
  redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
  redis.call('EXPIRE', KEYS[1], ARGV[6])
end
return redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
`)

// retryScript records a temporary failure and restarts the entry's idle
// time (the retry delay) if this consumer still owns it.
//
//	KEYS: record, stream
//	ARGV: group, consumer, entry id, last error, now (unix ms)
var retryScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'state') == 'QUEUED' then
  redis.call('HSET', KEYS[1], 'error', ARGV[4], 'updated', ARGV[5])
end
local p = redis.call('XPENDING', KEYS[2], ARGV[1], ARGV[3], ARGV[3], 1)
if p[1] and p[1][2] == ARGV[2] then
  redis.call('XCLAIM', KEYS[2], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
end
return 1
`)

// extendScript resets the idle time of the given entries that this
// consumer still owns (XCLAIM ... JUSTID does not count a delivery).
//
//	KEYS: stream
//	ARGV: group, consumer, entry ids...
//	returns how many entries were extended
var extendScript = redis.NewScript(`
local n = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    n = n + 1
  end
end
return n
`)
