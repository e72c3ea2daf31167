package delivery

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// A message's logger logs its attributes as With would, also within a
// group, and only for records that are logged.
func TestLazyAttrsLogLikeWith(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	log := slog.New(lazyAttrs{h: base.Handler()}).With("message_id", "m1", "partition", 3)
	log.DebugContext(context.Background(), "not logged", "k", "v")
	if buf.Len() != 0 {
		t.Fatalf("a debug record was written at level info: %q", buf.String())
	}
	log.WarnContext(context.Background(), "failed", "err", "boom")
	log.WithGroup("g").With("x", 1).Info("grouped", "y", 2)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("logged %q; want two lines", buf.String())
	}
	for _, want := range []string{"msg=failed", "err=boom", "message_id=m1", "partition=3"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("line %q lacks %q", lines[0], want)
		}
	}
	for _, want := range []string{"message_id=m1", "g.x=1", "g.y=2"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("line %q lacks %q", lines[1], want)
		}
	}
}
