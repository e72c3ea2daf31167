package subscription

import (
	"fmt"
	"time"
)

// State is where a subscriber is in their lifecycle.
type State int

// The states. StateUnspecified is only a filter value ("any state"); no
// record is ever in it.
const (
	StateUnspecified State = iota
	// StatePending: signed up, confirmation mail sent, not yet confirmed.
	StatePending
	// StateActive: confirmed; gets digests.
	StateActive
	// StateUnsubscribed: unsubscribed by the subscriber; gets nothing until
	// they subscribe (and confirm) again.
	StateUnsubscribed
	// StateSuppressed: stopped by an operator or a hard bounce/complaint;
	// gets nothing, and Subscribe cannot undo it.
	StateSuppressed
)

// String returns the state's lower-case name, which is also how it is
// stored.
func (s State) String() string {
	switch s {
	case StateUnspecified:
		return "unspecified"
	case StatePending:
		return "pending"
	case StateActive:
		return "active"
	case StateUnsubscribed:
		return "unsubscribed"
	case StateSuppressed:
		return "suppressed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// ParseState is the inverse of String for the states a record can be in.
func ParseState(name string) (State, error) {
	for s := StatePending; s <= StateSuppressed; s++ {
		if s.String() == name {
			return s, nil
		}
	}
	return StateUnspecified, fmt.Errorf("subscription: unknown state %q", name)
}

// Valid reports whether s is a state a record can be in.
func (s State) Valid() bool { return s >= StatePending && s <= StateSuppressed }

// Channel is how a subscriber unsubscribed.
type Channel string

// The unsubscribe channels, as recorded in the consent evidence.
const (
	// ChannelAPI is the Unsubscribe RPC (e.g. a frontend's own page).
	ChannelAPI Channel = "api"
	// ChannelOneClick is an RFC 8058 one-click POST from a mail client.
	ChannelOneClick Channel = "one-click"
	// ChannelPage is the unsubscribe page's button.
	ChannelPage Channel = "page"
)

// Subscriber is one subscriber record.
type Subscriber struct {
	// ID is a ULID, so ids sort by creation time.
	ID string
	// Email is the normalised address (domain in punycode).
	Email string
	// State is the lifecycle state.
	State State
	// TokenEpoch is carried by every link token; bumping it revokes all
	// links issued before.
	TokenEpoch uint64
	// CreateTime and UpdateTime are when the record was created and last
	// changed.
	CreateTime time.Time
	UpdateTime time.Time
	// Consent is the evidence of consent given and withdrawn.
	Consent ConsentEvidence
}

// ConsentEvidence records how and when consent was given and withdrawn. It
// describes the most recent sign-up: subscribing again after unsubscribing
// replaces it.
type ConsentEvidence struct {
	// ConsentTextVersion is the version of the consent text shown at
	// sign-up.
	ConsentTextVersion string
	// SignupTime, SignupIP and SignupUserAgent describe the sign-up.
	SignupTime      time.Time
	SignupIP        string
	SignupUserAgent string
	// ConfirmTime, ConfirmIP and ConfirmUserAgent describe the double
	// opt-in confirmation; zero until confirmed.
	ConfirmTime      time.Time
	ConfirmIP        string
	ConfirmUserAgent string
	// UnsubscribeTime and UnsubscribeChannel describe the unsubscribe;
	// zero until unsubscribed.
	UnsubscribeTime    time.Time
	UnsubscribeChannel Channel
}

// Client is what is known of the person behind a request.
type Client struct {
	// IP is their address as seen by the frontend or the page; may be empty.
	IP string
	// UserAgent is their browser's user agent; may be empty.
	UserAgent string
}

// SubscribeRequest is a sign-up.
type SubscribeRequest struct {
	// Email is the address to subscribe.
	Email string
	// ConsentTextVersion is the version of the consent text the person was
	// shown; empty means DefaultConsentTextVersion.
	ConsentTextVersion string
	// Client is who signed up.
	Client Client
}

// ListRequest asks for one page of subscribers.
type ListRequest struct {
	// PageSize is the most to return: 0 means the default, more than the
	// maximum means the maximum, negative is invalid.
	PageSize int
	// PageToken is NextPageToken of the previous page, or empty.
	PageToken string
	// State filters by state; StateUnspecified means all.
	State State
}

// ListResult is one page of subscribers.
type ListResult struct {
	Subscribers []Subscriber
	// NextPageToken fetches the next page; empty on the last page.
	NextPageToken string
}

// ListDueRequest asks for one page of the subscribers due a digest.
type ListDueRequest struct {
	// DueTime is the instant to evaluate; zero means now.
	DueTime time.Time
	// PageSize and PageToken page as in ListRequest.
	PageSize  int
	PageToken string
}

// DueSubscriber is what the digest service needs to mail one subscriber.
type DueSubscriber struct {
	ID    string
	Email string
	// UnsubscribeURL is the signed one-click unsubscribe link.
	UnsubscribeURL string
}

// ListDueResult is one page of due subscribers.
type ListDueResult struct {
	Subscribers   []DueSubscriber
	NextPageToken string
}
