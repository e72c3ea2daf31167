package redisstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// The message record (snd:msg:{p}:<id>) is a hash. Redis keeps a small hash
// as a listpack (one compact allocation) only while every field and value
// is at most hash-max-listpack-value bytes (64 by default) and there are at
// most hash-max-listpack-entries fields (128); a single longer value turns
// the record, for good, into a hash table of about twice the size
// (docs/benchmarks.md). The record therefore keeps its values short, with
// the default Redis configuration:
//
//	key        idempotency key (the enqueue script compares it)
//	nonce      the Enqueue call's, an integer (see Enqueue)
//	created    unix ms
//	state      QUEUED … (the delivery scripts keep the status fields:
//	           state, attempts, updated, leases, sent, reply, error, next,
//	           unknown; attempts and updated are absent until first written:
//	           0 and created)
//	error      the last failure, and the relay's reply to the message:
//	reply      when longer than 64 bytes not under these names but in
//	e0, e1, …  pieces of 64 bytes, e0, … and r0, … (recordtext.go)
//	r0, r1, …
//	rcpt       recipient (the finish script reads it for the outbox)
//	lane       "bulk" | "transactional" (RetryDeadLetters reads it)
//	content    content id (64 hex digits)
//	tp         W3C traceparent (55 bytes), when the Enqueue was traced
//	vars       "2", the layout (below)
//	v0, v1, …  the variables as one JSON object, in pieces of 64 bytes
//	uvar       the variable that holds the List-Unsubscribe URL, or, when
//	u0, u1, …  none does, the URL itself in pieces of 64 bytes
//
// Layout 1, written by earlier versions and still read, had the variables'
// JSON in vars, the URL in unsub, and attempts and updated from the start.
// In layout 2 vars is "2", not a JSON object, so that an earlier version
// (a replica not yet upgraded in a rolling upgrade) refuses the record —
// "loading a message failed; it will be retried": the entry stays pending
// and an upgraded replica claims it — instead of sending the mail without
// its variables.
//
// A key or recipient longer than 64 bytes, or variables, a URL, an error
// or a reply of more than maxPieces pieces are stored whole: correct, only
// the record is then a hash table.
const (
	// recordLayout is the value of vars in a layout 2 record.
	recordLayout = "2"
	// pieceBytes is the longest value a listpack hash holds by default.
	pieceBytes = 64
	// maxPieces bounds the fields a long value is cut into; beyond it the
	// record could not stay a listpack anyway.
	maxPieces = 32
)

// recordFields returns the field/value pairs of m's record that the enqueue
// script does not write itself (key, nonce, created, state).
func recordFields(m queue.Message) ([]any, error) {
	f := []any{"rcpt", m.Recipient, "lane", m.Lane.String(), "content", m.ContentID, "vars", recordLayout}
	if m.TraceParent != "" {
		f = append(f, "tp", m.TraceParent)
	}
	if len(m.Variables) > 0 {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false) // URLs keep their & instead of \u0026
		if err := enc.Encode(m.Variables); err != nil {
			return nil, fmt.Errorf("encode variables: %w", err)
		}
		f = appendPieces(f, "v", strings.TrimSuffix(b.String(), "\n"))
	}
	if u := m.ListUnsubscribeURL; u != "" {
		if name := variableHolding(m.Variables, u); name != "" {
			f = append(f, "uvar", name)
		} else {
			f = appendPieces(f, "u", u)
		}
	}
	return f, nil
}

// variableHolding returns the first name (in sorted order) of a variable
// whose value is v, or "".
func variableHolding(vars map[string]string, v string) string {
	var names []string
	for name, val := range vars {
		if val == v {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return slices.Min(names)
}

// appendPieces appends s as fields <prefix>0, <prefix>1, … of at most
// pieceBytes each, or whole as <prefix>0 when that would take more than
// maxPieces fields.
func appendPieces(f []any, prefix, s string) []any {
	if len(s) > pieceBytes*maxPieces {
		return append(f, prefix+"0", s)
	}
	for i := 0; len(s) > 0; i++ {
		n := min(len(s), pieceBytes)
		f = append(f, prefix+strconv.Itoa(i), s[:n])
		s = s[n:]
	}
	return f
}

// joinPieces reassembles what appendPieces stored under prefix.
func joinPieces(v map[string]string, prefix string) string {
	var b strings.Builder
	for i := 0; ; i++ {
		p, ok := v[prefix+strconv.Itoa(i)]
		if !ok {
			return b.String()
		}
		b.WriteString(p)
	}
}

// decodeRecord reads a record of either layout.
func decodeRecord(id string, v map[string]string) (queue.Message, error) {
	m := queue.Message{
		ID:             id,
		IdempotencyKey: v["key"],
		Recipient:      v["rcpt"],
		ContentID:      v["content"],
		LastError:      recordText(v, "error", "e"),
		TraceParent:    v["tp"],
	}
	var ok bool
	if m.Lane, ok = queue.ParseLane(v["lane"]); !ok {
		return queue.Message{}, fmt.Errorf("record has lane %q", v["lane"])
	}
	if m.State, ok = queue.ParseState(v["state"]); !ok {
		return queue.Message{}, fmt.Errorf("record has state %q", v["state"])
	}
	vars := v["vars"]
	if vars == recordLayout {
		vars = joinPieces(v, "v")
	}
	if vars != "" {
		var ok bool
		if m.Variables, ok = decodeFlatObject(vars); !ok {
			if err := json.Unmarshal([]byte(vars), &m.Variables); err != nil {
				return queue.Message{}, fmt.Errorf("record variables: %w", err)
			}
		}
	}
	switch {
	case v["unsub"] != "": // layout 1
		m.ListUnsubscribeURL = v["unsub"]
	case v["uvar"] != "":
		u, ok := m.Variables[v["uvar"]]
		if !ok {
			return queue.Message{}, fmt.Errorf("record's List-Unsubscribe URL is variable %q, which it does not have", v["uvar"])
		}
		m.ListUnsubscribeURL = u
	default:
		m.ListUnsubscribeURL = joinPieces(v, "u")
	}
	m.Attempts, _ = strconv.Atoi(v["attempts"])
	m.Created = unixMilli(v["created"])
	m.Updated = m.Created
	if u, ok := v["updated"]; ok {
		m.Updated = unixMilli(u)
	}
	m.Sent = unixMilli(v["sent"])
	m.NextAttempt = unixMilli(v["next"])
	m.Reply = recordText(v, "reply", "r")
	m.UnknownOutcomes, _ = strconv.Atoi(v["unknown"])
	return m, nil
}

func unixMilli(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
