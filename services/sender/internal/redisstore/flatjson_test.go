package redisstore

import (
	"encoding/json"
	"fmt"
	"maps"
	"testing"

	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

// FuzzDecodeFlatObject: whenever the fast decoder accepts an input, it
// gives what encoding/json gives; it accepts what the sender writes.
func FuzzDecodeFlatObject(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"name":"Ada"}` + "\n", `{"a":"1","b":"https://example.com/u?t=x&y=1"}`,
		`{"a":"\u00e9"}`, `{"a":"x\"y"}`, `{"a":1}`, `{"a":"1",}`, `{"a" :"1"}`, `{"a":"1","a":"2"}`,
		"{\"a\":\"\xff\"}", `{"é":"ü 😀"}`, `{"a":"1"`, `{,}`, `{"":""}`, `[]`, `{"a":"1"}{}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := decodeFlatObject(s)
		var want map[string]string
		err := json.Unmarshal([]byte(s), &want)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("decodeFlatObject(%q) accepted what json refuses (%v)", s, err)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("decodeFlatObject(%q) = %v, json gives %v", s, got, want)
		}
	})
}

// What the sender writes (recordFields) is decoded by the fast path.
func TestDecodeFlatObjectTakesWhatTheSenderWrites(t *testing.T) {
	vars := map[string]string{"name": "Ada Lovelace", "unsubscribe_url": "https://example.com/unsubscribe?t=AbC-123_x&k=1<>", "é": "ü"}
	fields, err := recordFields(queue.Message{Recipient: "r@example.com", Lane: queue.LaneBulk, ContentID: "c", Variables: vars})
	if err != nil {
		t.Fatal(err)
	}
	v := map[string]string{}
	for i := 0; i+1 < len(fields); i += 2 {
		v[fmt.Sprint(fields[i])] = fmt.Sprint(fields[i+1])
	}
	written := joinPieces(v, "v")
	got, ok := decodeFlatObject(written)
	if !ok || !maps.Equal(got, vars) {
		t.Errorf("decodeFlatObject(%q) = %v, %v; want %v", written, got, ok, vars)
	}
}
