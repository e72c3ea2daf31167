package delivery

import (
	"context"
	"log/slog"
)

// lazyAttrs is a slog.Handler that keeps the attributes given to With
// until a record is logged. The dispatcher makes a logger with a message's
// attributes for every message it handles and most never log anything,
// while a text or JSON handler formats the attributes right away in With.
// The kept attributes come after the record's own.
type lazyAttrs struct {
	h     slog.Handler
	attrs []slog.Attr
}

func (l lazyAttrs) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l lazyAttrs) Handle(ctx context.Context, r slog.Record) error {
	if len(l.attrs) > 0 {
		r = r.Clone()
		r.AddAttrs(l.attrs...)
	}
	return l.h.Handle(ctx, r)
}

func (l lazyAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return lazyAttrs{h: l.h, attrs: append(l.attrs[:len(l.attrs):len(l.attrs)], attrs...)}
}

func (l lazyAttrs) WithGroup(name string) slog.Handler {
	return lazyAttrs{h: l.h.WithAttrs(l.attrs).WithGroup(name)}
}
