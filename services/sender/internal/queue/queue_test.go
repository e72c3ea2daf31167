package queue_test

import (
	"strings"
	"testing"

	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

func TestMessageID(t *testing.T) {
	// sha256("digest:s1:2026-06-12"), first 16 bytes.
	id := queue.MessageID("digest:s1:2026-06-12")
	if !queue.ValidMessageID(id) {
		t.Fatalf("MessageID = %q: not 32 lowercase hex digits", id)
	}
	if queue.MessageID("digest:s1:2026-06-12") != id {
		t.Error("MessageID is not stable")
	}
	if queue.MessageID("digest:s1:2026-06-13") == id {
		t.Error("different keys got the same id")
	}
	if got, want := queue.MessageID("a"), "ca978112ca1bbdcafac231b39a23dc4d"; got != want {
		t.Errorf("MessageID(a) = %s, want %s (sha256 prefix)", got, want)
	}
}

func TestPartition(t *testing.T) {
	tests := []struct {
		id   string
		n    int
		want int
	}{
		{"00000000" + strings.Repeat("0", 24), 4, 0},
		{"00000003" + strings.Repeat("0", 24), 4, 3},
		{"00000007" + strings.Repeat("0", 24), 4, 3},
		{"ffffffff" + strings.Repeat("0", 24), 4, 3},  // 4294967295 % 4
		{"ffffffff" + strings.Repeat("0", 24), 10, 5}, // 4294967295 % 10
		{"ca978112ca1bbdcafac231b39a23dc4d", 1, 0},    // one partition
		{"ca978112ca1bbdcafac231b39a23dc4d", 7, 2},    // 0xca978112 = 3398926610; % 7 = 2
		{"not-hex-at-all-but-long-enough-xx", 4, 0},   // never happens: ids are validated
	}
	for _, tt := range tests {
		if got := queue.Partition(tt.id, tt.n); got != tt.want {
			t.Errorf("Partition(%s, %d) = %d, want %d", tt.id, tt.n, got, tt.want)
		}
	}
}

func TestContentID(t *testing.T) {
	a := queue.Content{Subject: "s", HTML: "h", Text: "t"}
	if a.ID() != (queue.Content{Subject: "s", HTML: "h", Text: "t"}).ID() {
		t.Error("equal content got different ids")
	}
	// Moving bytes between fields must change the id.
	for _, other := range []queue.Content{
		{Subject: "sh", HTML: "", Text: "t"},
		{Subject: "s", HTML: "", Text: "ht"},
		{Subject: "", HTML: "sh", Text: "t"},
	} {
		if other.ID() == a.ID() {
			t.Errorf("%+v and %+v share an id", other, a)
		}
	}
	if !queue.ValidContentID(a.ID()) {
		t.Errorf("ID %q is not 64 hex digits", a.ID())
	}
	if got := (queue.Content{Subject: "{{b}}", HTML: "{{a}} {{c}}", Text: "{{a}}"}).Variables(); strings.Join(got, ",") != "a,b,c" {
		t.Errorf("Variables = %v, want [a b c]", got)
	}
}

func TestLaneAndStateNames(t *testing.T) {
	for _, l := range queue.Lanes() {
		if got, ok := queue.ParseLane(l.String()); !ok || got != l {
			t.Errorf("ParseLane(%q) = %v, %v", l.String(), got, ok)
		}
	}
	for _, s := range []queue.State{queue.StateQueued, queue.StateSent, queue.StateDead} {
		if got, ok := queue.ParseState(s.String()); !ok || got != s {
			t.Errorf("ParseState(%q) = %v, %v", s.String(), got, ok)
		}
	}
	if _, ok := queue.ParseLane("express"); ok {
		t.Error("ParseLane accepted an unknown lane")
	}
	if queue.Lane(0).Valid() || queue.Lane(9).Valid() {
		t.Error("an invalid lane is Valid")
	}
}
