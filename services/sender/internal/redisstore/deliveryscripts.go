package redisstore

import "github.com/redis/go-redis/v9"

// The delivery path's two scripts, lease and finish, each serve the calls
// of several workers of one partition in one run (pipeBatch): Redis' cost
// per script run (and per XACK) is shared by the group. The calls are
// served one after the other, exactly as separate runs would serve them;
// the run is one atomic step. Every key is in the partition's slot.

// leaseScript takes messages' delivery leases (DESIGN §4): SET NX PX, in a
// script so that the answer tells why it was refused. Each lease gets a
// new number from the record, part of the token stored in the mark, so an
// older lease can never be renewed after a newer one was taken. Taking the
// lease also counts the delivery attempt it is for (same record, same
// slot).
//
//	KEYS: per call: mark, record
//	ARGV: per call: consumer, lease (ms), now (unix ms)
//	returns per call three elements: 'sent', 'held', 'missing' (no
//	        record) or 'ok'; then the token and the attempt count ('ok'
//	        only, else '')
var leaseScript = redis.NewScript(`
local out = {}
for i = 0, #KEYS / 2 - 1 do
  local mark, rec = KEYS[2 * i + 1], KEYS[2 * i + 2]
  local consumer, px, now = ARGV[3 * i + 1], ARGV[3 * i + 2], ARGV[3 * i + 3]
  local m = redis.call('GET', mark)
  local mine = 'sending:' .. consumer .. ':'
  local res, token, attempts = 'ok', '', ''
  if m == 'sent' then
    res = 'sent'
  elseif m and string.sub(m, 1, #mine) ~= mine then
    res = 'held'
  else
    local r = redis.call('HMGET', rec, 'state', 'leases', 'attempts')
    if not r[1] then
      res = 'missing'
    else
      local n = (tonumber(r[2]) or 0) + 1
      attempts = (tonumber(r[3]) or 0) + 1
      token = mine .. n
      redis.call('HSET', rec, 'leases', n, 'attempts', attempts, 'updated', now)
      redis.call('SET', mark, token, 'PX', px)
    end
  end
  out[3 * i + 1], out[3 * i + 2], out[3 * i + 3] = res, token, tostring(attempts)
end
return out
`)

// finishScript records the final state of messages (SENT, DEAD or
// CANCELLED), counts them, lets their records expire, sets or releases
// their marks and acknowledges their entries (one XACK per stream for all
// of them). A message already finished is only acknowledged (and its mark
// kept), so a retried call counts nothing twice. A message that waited for
// a retry ('next' set) leaves the delayed set. The error and the reply
// are stored as recordtext.go says.
//
//	KEYS: stats, dead index, outbox; per call: record, mark, stream,
//	      delayed set
//	ARGV: group, record TTL (s), sent mark TTL (s); per call: entry id,
//	      final state, counter field, now (ms), reason ("" keeps the old
//	      error), lease token, report ("1": queue a failure report),
//	      reply, message id, refund ("1": take back the attempt the lease
//	      counted; a cancelled message was never attempted)
//	returns the number of calls
var finishScript = redis.NewScript(isFinal + textLua() + `
local group, ttl, sentTTL = ARGV[1], ARGV[2], ARGV[3]
local n = (#ARGV - 3) / 10
local counts, counters, acks, streams = {}, {}, {}, {}
for i = 0, n - 1 do
  local rec, mark, stream, delay = KEYS[4 * i + 4], KEYS[4 * i + 5], KEYS[4 * i + 6], KEYS[4 * i + 7]
  local a = 3 + 10 * i
  local entry, state, counter, now = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local reason, token, report, reply = ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8]
  local id, refund = ARGV[a + 9], ARGV[a + 10]
  local cur = redis.call('HMGET', rec, 'state', 'next', 'error', 'e0')
  local st = cur[1]
  if st and not final(st) then
    local f = {'state', state, 'updated', now}
    if state == 'SENT' then
      f[#f + 1] = 'sent'
      f[#f + 1] = now
      -- Written once: SENT is final. No earlier reply to remove.
      if reply ~= '' then textfields(f, 'reply', 'r', reply) end
    end
    local pieces = 0
    if reason ~= '' then pieces = textfields(f, 'error', 'e', reason) end
    redis.call('HSET', rec, unpack(f))
    if reason ~= '' then droptext(rec, 'error', 'e', pieces, cur[3], cur[4]) end
    if cur[2] then
      redis.call('HDEL', rec, 'next')
      redis.call('ZREM', delay, id)
    end
    if refund == '1' then redis.call('HINCRBY', rec, 'attempts', -1) end
    if n == 1 then
      redis.call('HINCRBY', KEYS[1], counter, 1)
    elseif not counts[counter] then
      counts[counter] = 1
      counters[#counters + 1] = counter
    else
      counts[counter] = counts[counter] + 1
    end
    redis.call('EXPIRE', rec, ttl)
    if state == 'DEAD' then
      redis.call('ZADD', KEYS[2], now, id)
      if report == '1' then
        redis.call('XADD', KEYS[3], '*', 'rcpt', redis.call('HGET', rec, 'rcpt'), 'id', id, 'detail', reason, 'at', now)
      end
    end
  end
  if state == 'SENT' then
    redis.call('SET', mark, 'sent', 'EX', sentTTL)
  elseif token ~= '' and redis.call('GET', mark) == token then
    redis.call('DEL', mark)
  end
  if n == 1 then
    redis.call('XACK', stream, group, entry)
  elseif not acks[stream] then
    acks[stream] = {entry}
    streams[#streams + 1] = stream
  else
    local ids = acks[stream]
    ids[#ids + 1] = entry
  end
end
for _, counter in ipairs(counters) do redis.call('HINCRBY', KEYS[1], counter, counts[counter]) end
for _, stream in ipairs(streams) do redis.call('XACK', stream, group, unpack(acks[stream])) end
return n
`)
