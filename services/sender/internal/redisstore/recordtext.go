package redisstore

import "strconv"

// The status texts of a record — error (the last failure) and reply (the
// relay's answer to the message) — come from the relay and are often
// longer than a listpack value (a greylisting 450 is ~150 bytes). The
// delivery scripts store one that fits in pieceBytes whole, under its name;
// a longer one in pieces of pieceBytes, e0, e1, … (error) or r0, r1, …
// (reply), as appendPieces would, without the name; one that would take
// more than maxPieces pieces whole again. The name, when present, is the
// text: an earlier version (a replica not yet upgraded) writes error whole
// and leaves the pieces a later version wrote; this version removes the
// name when it writes pieces, and the pieces an earlier, longer text left
// beyond the new ones. (The earlier version shows a record whose text is in
// pieces without it: LastError and Reply are only shown, never acted on.)
// A message gets its reply once, when it becomes SENT: a final state.

// textLua is Lua for the scripts that write status texts:
//
//	textfields(f, name, prefix, s) appends to the HSET arguments f the
//	    fields that store s; returns how many pieces (0: s under name)
//	droptext(rec, name, prefix, n, hadname, hadpieces) removes what the
//	    text written before left over: name when the new text is in n > 0
//	    pieces (hadname: the record had name), the pieces from prefix..n on
//	    (hadpieces: it had prefix0)
func textLua() string {
	return `
local pieceBytes, maxPieces = ` + strconv.Itoa(pieceBytes) + `, ` + strconv.Itoa(maxPieces) + `
local function textfields(f, name, prefix, s)
  if #s <= pieceBytes or #s > pieceBytes * maxPieces then
    f[#f + 1] = name
    f[#f + 1] = s
    return 0
  end
  local n = 0
  for i = 1, #s, pieceBytes do
    f[#f + 1] = prefix .. n
    f[#f + 1] = string.sub(s, i, i + pieceBytes - 1)
    n = n + 1
  end
  return n
end
local function droptext(rec, name, prefix, n, hadname, hadpieces)
  if n > 0 and hadname then redis.call('HDEL', rec, name) end
  if hadpieces then
    while redis.call('HDEL', rec, prefix .. n) == 1 do n = n + 1 end
  end
end
`
}

// recordText reads a status text stored by textfields (or whole under its
// name by an earlier version).
func recordText(v map[string]string, name, prefix string) string {
	if s, ok := v[name]; ok {
		return s
	}
	return joinPieces(v, prefix)
}
