package digest

import "context"

// Tracer marks where a run and each of its pages start and end, for
// tracing (digestd puts OpenTelemetry behind it, see internal/runtrace);
// the domain never sees a span. Config.Tracer nil means no tracing.
type Tracer interface {
	// StartRun is called in the goroutine that does run's work, whose
	// context is ctx. origin is the context of the call that started the
	// run (RunDigest's request, or the scheduler's tick): the run belongs
	// to its trace, if any, though it outlives that call. StartRun returns
	// the context the run's work uses and a func to call once with how the
	// run ended.
	StartRun(ctx, origin context.Context, run Run) (context.Context, func(RunEnd))
	// StartPage is called for each page of due subscribers, with the run's
	// work context; it returns the context for the page's calls and a func
	// to call once with what the page did.
	StartPage(ctx context.Context, run Run, subscribers int) (context.Context, func(Counts, error))
}

// RunEnd is how a run ended, as recorded.
type RunEnd struct {
	State  RunState
	Counts Counts
	// Error is the run's recorded error text (a warning when it
	// SUCCEEDED with failures).
	Error string
}

// noTracer is the Tracer of a Service configured without one.
type noTracer struct{}

func (noTracer) StartRun(ctx, _ context.Context, _ Run) (context.Context, func(RunEnd)) {
	return ctx, func(RunEnd) {}
}

func (noTracer) StartPage(ctx context.Context, _ Run, _ int) (context.Context, func(Counts, error)) {
	return ctx, func(Counts, error) {}
}

// tracer is the configured Tracer, or one that does nothing.
func (s *Service) tracer() Tracer {
	if s.cfg.Tracer == nil {
		return noTracer{}
	}
	return s.cfg.Tracer
}
