package subscription

// Metrics is what the service reports about the lifecycle. The Prometheus
// implementation is internal/metrics; nil in Config means nothing is
// recorded. The number of subscribers in each state is not reported here:
// the store keeps it with the records (see internal/metrics).
type Metrics interface {
	// Signup counts a sign-up (Subscribe or an imported row) once it is
	// handled, by the state its address was in: "new", "pending",
	// "active", "unsubscribed" or "suppressed" (also an erased suppressed
	// address).
	Signup(result string)
	// Confirmed counts a PENDING subscriber who confirmed.
	Confirmed()
	// Left counts a PENDING or ACTIVE subscriber who stopped getting mail
	// (UNSUBSCRIBED or SUPPRESSED), by how.
	Left(ch Channel)
	// RateLimited counts a Subscribe refused by the named abuse limit
	// ("ip", "network", "mailbox", "global").
	RateLimited(limit string)
	// DeliveryFailure counts a hard bounce or complaint reported by the
	// sender (RecordDeliveryFailure), whether or not the address is known.
	DeliveryFailure(kind FailureKind)
}

type noMetrics struct{}

func (noMetrics) Signup(string)               {}
func (noMetrics) Confirmed()                  {}
func (noMetrics) Left(Channel)                {}
func (noMetrics) RateLimited(string)          {}
func (noMetrics) DeliveryFailure(FailureKind) {}
