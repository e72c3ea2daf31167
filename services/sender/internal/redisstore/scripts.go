package redisstore

import "github.com/redis/go-redis/v9"

// Every script touches only keys of one partition (hash tag {p}).

// enqueueScript creates the records and stream entries of messages of one
// partition: for each message, unless its record exists, the record, its
// stream entry and its index entry. One run for many messages saves the
// per-call cost of a script (most of it, for a message this small); each
// message is still all-or-nothing (Redis refuses a script for memory only
// before its first write) and checked on its own. The record's layout is
// record.go's.
//
//	KEYS: index (created time by id), then for each message: record, stream
//	ARGV: for each message: n (how many arguments of the message follow),
//	      idempotency key, nonce, created (unix ms), message id, then the
//	      record's other fields and values (recordFields)
//	returns for each message 1 created (now or by this same call before),
//	        0 duplicate, -1 the record belongs to a different idempotency key
var enqueueScript = redis.NewScript(`
local res = {}
local a = 1
for k = 2, #KEYS, 2 do
  local n = tonumber(ARGV[a])
  local key, nonce, created, id = ARGV[a+1], ARGV[a+2], ARGV[a+3], ARGV[a+4]
  local cur = redis.call('HMGET', KEYS[k], 'key', 'nonce')
  local r = 1
  if cur[1] then
    if cur[1] ~= key then r = -1 elseif cur[2] ~= nonce then r = 0 end
  else
    redis.call('HSET', KEYS[k], 'key', key, 'nonce', nonce, 'created', created, 'state', 'QUEUED', unpack(ARGV, a+5, a+n))
    redis.call('XADD', KEYS[k+1], '*', 'id', id)
    redis.call('ZADD', KEYS[1], created, id)
  end
  res[#res+1] = r
  a = a + n + 1
end
return res
`)

// isFinal is Lua: whether a record state needs no more delivery.
const isFinal = `
local function final(st) return st == 'SENT' or st == 'DEAD' or st == 'CANCELLED' end
`

// renewScript extends a lease if the mark still holds the token, or if the
// mark expired and no other lease was taken since (the record's lease
// number is still the token's).
//
//	KEYS: mark, record
//	ARGV: token, lease (ms)
//	returns 1 held, 0 lost
var renewScript = redis.NewScript(`
local m = redis.call('GET', KEYS[1])
if m == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if m then return 0 end
local n = string.match(ARGV[1], ':(%d+)$')
if n and redis.call('HGET', KEYS[2], 'leases') == n then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

// retryScript records a failed attempt and schedules the message to go
// back into its stream when due (the delayed set), acknowledges the entry
// and releases the lease: nothing stays pending while it waits. The error
// is stored as recordtext.go says.
//
//	KEYS: record, stream, delayed set of the lane, mark
//	ARGV: group, entry id, state (RETRYING|UNKNOWN), reason, now (ms),
//	      due (ms), refund ("1": take the attempt back), lease token,
//	      message id
var retryScript = redis.NewScript(isFinal + textLua() + `
local cur = redis.call('HMGET', KEYS[1], 'state', 'error', 'e0')
local st = cur[1]
if st and not final(st) then
  local f = {'state', ARGV[3], 'updated', ARGV[5], 'next', ARGV[6]}
  local pieces = textfields(f, 'error', 'e', ARGV[4])
  redis.call('HSET', KEYS[1], unpack(f))
  droptext(KEYS[1], 'error', 'e', pieces, cur[2], cur[3])
  if ARGV[7] == '1' then redis.call('HINCRBY', KEYS[1], 'attempts', -1) end
  if ARGV[3] == 'UNKNOWN' then redis.call('HINCRBY', KEYS[1], 'unknown', 1) end
  redis.call('ZADD', KEYS[3], ARGV[6], ARGV[9])
end
if ARGV[8] ~= '' and redis.call('GET', KEYS[4]) == ARGV[8] then
  redis.call('DEL', KEYS[4])
end
return redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
`)

// promoteScript moves due delayed retries back into their stream.
//
//	KEYS: delayed set, stream (of the same lane and partition)
//	ARGV: now (ms), max
//	returns how many were moved
var promoteScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'id', id)
  redis.call('ZREM', KEYS[1], id)
end
return #due
`)

// deadLetterScript records an entry whose message record is missing in the
// partition's dead-letter stream and acknowledges it.
//
//	KEYS: stream, dead-letter stream
//	ARGV: group, entry id, message id, reason, now (ms), stream key
var deadLetterScript = redis.NewScript(`
redis.call('XADD', KEYS[2], '*', 'stream', ARGV[6], 'entry', ARGV[2], 'id', ARGV[3], 'reason', ARGV[4], 'at', ARGV[5])
return redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
`)

// dropStaleConsumersScript removes the group's consumers, other than self,
// that own no pending entry and were idle for at least the given time.
// Checking and deleting in one script means a consumer never loses entries
// it read in between (DELCONSUMER drops a consumer's pending entries).
//
//	KEYS: stream
//	ARGV: group, self, idle (ms)
//	returns how many were removed
var dropStaleConsumersScript = redis.NewScript(`
local n = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['name'] ~= ARGV[2] and tonumber(f['pending']) == 0 and tonumber(f['idle']) >= tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    n = n + 1
  end
end
return n
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

// retryDeadScript queues a dead message again with a fresh attempt count
// and no error (neither whole nor in pieces: recordtext.go).
//
//	KEYS: record, stream of its lane, dead index, mark
//	ARGV: message id, now (ms)
//	returns 1 requeued, 0 not dead (or gone)
var retryDeadScript = redis.NewScript(textLua() + `
redis.call('ZREM', KEYS[3], ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'state', 'e0')
if cur[1] ~= 'DEAD' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'QUEUED', 'attempts', 0, 'updated', ARGV[2])
redis.call('HDEL', KEYS[1], 'next', 'error')
droptext(KEYS[1], 'error', 'e', 0, false, cur[2])
redis.call('PERSIST', KEYS[1])
redis.call('DEL', KEYS[4])
redis.call('XADD', KEYS[2], '*', 'id', ARGV[1])
return 1
`)
