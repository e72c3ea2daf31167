// Package sendtrace traces SMTP sends: it wraps the dispatcher's Mailer so
// that each send is a span in the trace of the call that queued the
// message (the W3C traceparent stored with it), keeping OpenTelemetry out
// of the delivery domain.
package sendtrace

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
)

// SpanName is the name of the span around one SMTP send.
const SpanName = "smtp.send"

// Mailer returns m with every send traced by tp; with a nil or no-op tp
// (tracing off) it returns m itself, so an untraced send pays nothing.
func Mailer(m delivery.Mailer, tp trace.TracerProvider) delivery.Mailer {
	if _, off := tp.(noop.TracerProvider); tp == nil || off {
		return m
	}
	return &mailer{next: m, tracer: tp.Tracer("github.com/paperroute/paperroute/services/sender")}
}

type mailer struct {
	next   delivery.Mailer
	tracer trace.Tracer
}

// Dial implements delivery.Mailer.
func (m *mailer) Dial(ctx context.Context) (delivery.Conn, error) {
	c, err := m.next.Dial(ctx)
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, tracer: m.tracer}, nil
}

// DialFor implements delivery.EnvelopeDialer, so that tracing does not
// hide the wrapped Mailer's.
func (m *mailer) DialFor(ctx context.Context, env delivery.Envelope) (delivery.Conn, error) {
	c, err := delivery.DialFor(ctx, m.next, env)
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, tracer: m.tracer}, nil
}

// conn traces Send; Reusable and Close are the wrapped connection's.
type conn struct {
	delivery.Conn
	tracer trace.Tracer
}

// Send implements delivery.Conn: a client span, child of the span that
// queued the message (when it was traced), around the wrapped Send.
func (c *conn) Send(ctx context.Context, m *delivery.Mail) error {
	if m.TraceParent != "" {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": m.TraceParent})
	}
	ctx, span := c.tracer.Start(ctx, SpanName, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("messaging.message.id", m.MessageID), attribute.String("paperroute.lane", m.Lane.String())))
	defer span.End()
	err := c.Conn.Send(ctx, m)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, outcome(err))
		return err
	}
	span.SetAttributes(attribute.String("smtp.reply", c.LastReply()))
	return nil
}

// LastReply implements delivery.Replier when the wrapped connection does.
func (c *conn) LastReply() string {
	if r, ok := c.Conn.(delivery.Replier); ok {
		return r.LastReply()
	}
	return ""
}

// outcome names the class of a send error for the span status.
func outcome(err error) string {
	switch {
	case errors.Is(err, delivery.ErrRejected):
		return "rejected"
	case errors.Is(err, delivery.ErrThrottled):
		return "throttled"
	case errors.Is(err, delivery.ErrOutcomeUnknown):
		return "outcome unknown"
	default:
		return "temporary failure"
	}
}
