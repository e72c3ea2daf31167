package digest

// Metrics is what the service reports about digest runs. The Prometheus
// implementation is internal/metrics; nil in Config means nothing is
// recorded.
type Metrics interface {
	// RunStarted is called when this process starts a run's work.
	RunStarted()
	// RunFinished is called when that work ends, with the run (Scheduled
	// tells the scheduler's runs from an operator's, DryRun a dry run),
	// the state it ended in and its counts.
	RunFinished(run Run, state RunState, counts Counts)
}

type noMetrics struct{}

func (noMetrics) RunStarted()                       {}
func (noMetrics) RunFinished(Run, RunState, Counts) {}
