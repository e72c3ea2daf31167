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
	// ChannelPage is the unsubscribe page's button (the link in a mail).
	ChannelPage Channel = "page"
	// ChannelPreferences is the unsubscribe button of the preferences page.
	ChannelPreferences Channel = "preferences"
	// ChannelOperator is an operator's Suppress.
	ChannelOperator Channel = "operator"
	// ChannelBounce is a hard bounce or complaint reported by the sender.
	ChannelBounce Channel = "bounce"
)

// Frequency is how often a subscriber gets a digest.
type Frequency int

// The frequencies.
const (
	FrequencyUnspecified Frequency = iota
	// FrequencyDaily is one edition per local calendar day.
	FrequencyDaily
	// FrequencyWeekly is one edition per ISO week, on Preferences.WeeklyDay.
	FrequencyWeekly
)

// String returns the frequency's lower-case name, which is also how it is
// stored.
func (f Frequency) String() string {
	switch f {
	case FrequencyDaily:
		return "daily"
	case FrequencyWeekly:
		return "weekly"
	}
	return "unspecified"
}

// ParseFrequency is the inverse of String.
func ParseFrequency(name string) (Frequency, error) {
	switch name {
	case "daily":
		return FrequencyDaily, nil
	case "weekly":
		return FrequencyWeekly, nil
	}
	return FrequencyUnspecified, fmt.Errorf("subscription: unknown frequency %q", name)
}

// Preferences are a subscriber's choices: what goes in their digest and
// when it arrives. A stored record's Preferences are always complete
// (defaults filled in, validated).
type Preferences struct {
	// Topics are topic ids from the catalogue, without repeats.
	Topics []string
	// Keywords are free words or phrases, without repeats.
	Keywords []string
	// Frequency is daily or weekly.
	Frequency Frequency
	// WeeklyDay is the delivery day of a weekly digest; for daily it is
	// ignored and stored as Sunday (0).
	WeeklyDay time.Weekday
	// DeliveryHour is the local hour of delivery, 0–23.
	DeliveryHour int
	// Timezone is an IANA zone name that time.LoadLocation accepts.
	Timezone string
	// Locale is a BCP 47 tag such as "en" or "de-CH".
	Locale string
}

// PreferencesUpdate is a partial change of Preferences: nil fields keep
// their current value.
type PreferencesUpdate struct {
	Topics       *[]string
	Keywords     *[]string
	Frequency    *Frequency
	WeeklyDay    *time.Weekday
	DeliveryHour *int
	Timezone     *string
	Locale       *string
}

// Topic is one entry of the topic catalogue.
type Topic struct {
	// ID is what subscribers store and the digest matches on.
	ID string
	// Label is what the subscribe and preferences pages show.
	Label string
}

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
	// Preferences are the subscriber's choices.
	Preferences Preferences
	// SuppressReason and SuppressTime say why and since when the
	// subscriber is SUPPRESSED; empty otherwise.
	SuppressReason string
	SuppressTime   time.Time
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
	// UnsubscribeTime and UnsubscribeChannel describe the unsubscribe
	// (or suppression); zero until unsubscribed.
	UnsubscribeTime    time.Time
	UnsubscribeChannel Channel
	// Source is where the consent was collected: "subscribe" (the
	// Subscribe RPC or page) or "import:<what the operator named>".
	Source string
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
	// shown. Required.
	ConsentTextVersion string
	// Client is who signed up.
	Client Client
	// Preferences are the choices made at sign-up; zero fields take the
	// service defaults (daily, DefaultDeliveryHour, DefaultTimezone, "en").
	// DeliveryHour is a pointer because 0 (midnight) is a valid choice.
	Topics       []string
	Keywords     []string
	Frequency    Frequency
	WeeklyDay    time.Weekday
	DeliveryHour *int
	Timezone     string
	Locale       string
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
	// Topic, when set, keeps only subscribers who chose this topic.
	Topic string
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
	// Preferences are the subscriber's topics, keywords and slot.
	Preferences Preferences
	// UnsubscribeURL is the signed one-click unsubscribe link.
	UnsubscribeURL string
	// ManageURL is the signed link to the preferences page.
	ManageURL string
}

// ListDueResult is one page of due subscribers.
type ListDueResult struct {
	Subscribers   []DueSubscriber
	NextPageToken string
}
