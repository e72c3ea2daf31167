package redisstore

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDecodeList checks decodeList against encoding/json: the plain-ASCII
// fast path must give exactly what json.Unmarshal gives, and anything it
// does not take must still decode (or fail) as before.
func TestDecodeList(t *testing.T) {
	tests := []string{
		`[]`, `["llm"]`, `["cs.AI","cs.LG"]`, `[""]`, `["",""]`, `["a,b","c]d","[e"]`,
		`["x y","tab	x"]`, `["caf\u00e9"]`, `["café"]`, `["a\"b"]`, `["a\\b"]`, `["\u003cb\u003e"]`,
		`null`, `[ "a" ]`, `["a", "b"]`, `["a""b"]`, `["a",]`, `[,"a"]`, `["a"`, `"a"]`, `[1]`, ``, `[`, `["]`,
		`["a"]x`, `x["a"]`, "[\"\x7f\"]",
	}
	for _, in := range tests {
		t.Run(in, func(t *testing.T) { checkDecodeList(t, in) })
	}
	for _, l := range [][]string{nil, {}, {"llm", "ai"}, {`quo"te`, `back\slash`, "<&>", "ünï", "\x00"}} {
		checkDecodeList(t, encodeList(l))
	}
}

func FuzzDecodeList(f *testing.F) {
	for _, s := range []string{`[]`, `["a","b"]`, `["a\"b"]`, `["a" ,"b"]`, `[""]`} {
		f.Add(s)
	}
	f.Fuzz(checkDecodeList)
}

func checkDecodeList(t *testing.T, in string) {
	var want []string
	wantErr := json.Unmarshal([]byte(in), &want)
	got, err := decodeList(in)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("decodeList(%q) error = %v, json.Unmarshal error = %v", in, err, wantErr)
	}
	if err != nil {
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decodeList(%q) mismatch (-json.Unmarshal +got):\n%s", in, diff)
	}
	if (want == nil) != (got == nil) {
		t.Errorf("decodeList(%q) = %#v, json.Unmarshal gives %#v", in, got, want)
	}
}
