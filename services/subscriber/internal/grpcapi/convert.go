package grpcapi

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/validation"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

func subscriberToProto(s subscription.Subscriber) *subscriberv1.Subscriber {
	c := s.Consent
	return &subscriberv1.Subscriber{
		Id:         s.ID,
		Email:      s.Email,
		State:      stateToProto(s.State),
		CreateTime: timestamp(s.CreateTime),
		UpdateTime: timestamp(s.UpdateTime),
		Consent: &subscriberv1.ConsentEvidence{
			ConsentTextVersion: c.ConsentTextVersion,
			SignupTime:         timestamp(c.SignupTime),
			SignupIp:           c.SignupIP,
			SignupUserAgent:    c.SignupUserAgent,
			ConfirmTime:        timestamp(c.ConfirmTime),
			ConfirmIp:          c.ConfirmIP,
			ConfirmUserAgent:   c.ConfirmUserAgent,
			UnsubscribeTime:    timestamp(c.UnsubscribeTime),
			UnsubscribeChannel: string(c.UnsubscribeChannel),
			Source:             c.Source,
		},
		Preferences:    preferencesToProto(s.Preferences),
		SuppressReason: s.SuppressReason,
		SuppressTime:   timestamp(s.SuppressTime),
	}
}

// timestamp is nil for the zero time, so unset times stay unset.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func stateToProto(s subscription.State) subscriberv1.SubscriberState {
	switch s {
	case subscription.StatePending:
		return subscriberv1.SubscriberState_SUBSCRIBER_STATE_PENDING
	case subscription.StateActive:
		return subscriberv1.SubscriberState_SUBSCRIBER_STATE_ACTIVE
	case subscription.StateUnsubscribed:
		return subscriberv1.SubscriberState_SUBSCRIBER_STATE_UNSUBSCRIBED
	case subscription.StateSuppressed:
		return subscriberv1.SubscriberState_SUBSCRIBER_STATE_SUPPRESSED
	}
	return subscriberv1.SubscriberState_SUBSCRIBER_STATE_UNSPECIFIED
}

// stateFromProto maps a state filter; a value this build does not know
// maps to an invalid domain state, which List rejects on "state".
func stateFromProto(s subscriberv1.SubscriberState) subscription.State {
	switch s {
	case subscriberv1.SubscriberState_SUBSCRIBER_STATE_UNSPECIFIED:
		return subscription.StateUnspecified
	case subscriberv1.SubscriberState_SUBSCRIBER_STATE_PENDING:
		return subscription.StatePending
	case subscriberv1.SubscriberState_SUBSCRIBER_STATE_ACTIVE:
		return subscription.StateActive
	case subscriberv1.SubscriberState_SUBSCRIBER_STATE_UNSUBSCRIBED:
		return subscription.StateUnsubscribed
	case subscriberv1.SubscriberState_SUBSCRIBER_STATE_SUPPRESSED:
		return subscription.StateSuppressed
	}
	return subscription.State(-1)
}

func preferencesToProto(p subscription.Preferences) *subscriberv1.Preferences {
	out := &subscriberv1.Preferences{
		Topics:       p.Topics,
		Keywords:     p.Keywords,
		DeliveryHour: int32(p.DeliveryHour),
		Timezone:     p.Timezone,
		Locale:       p.Locale,
	}
	switch p.Frequency {
	case subscription.FrequencyDaily:
		out.Frequency = subscriberv1.Frequency_FREQUENCY_DAILY
	case subscription.FrequencyWeekly:
		out.Frequency = subscriberv1.Frequency_FREQUENCY_WEEKLY
		out.WeeklyDay = weekdayToProto(p.WeeklyDay)
	}
	return out
}

// frequencyFromProto maps a frequency; UNSPECIFIED means the default.
func frequencyFromProto(errs *validation.Errors, field string, f subscriberv1.Frequency) subscription.Frequency {
	switch f {
	case subscriberv1.Frequency_FREQUENCY_UNSPECIFIED:
		return subscription.FrequencyUnspecified
	case subscriberv1.Frequency_FREQUENCY_DAILY:
		return subscription.FrequencyDaily
	case subscriberv1.Frequency_FREQUENCY_WEEKLY:
		return subscription.FrequencyWeekly
	}
	errs.Add(field, "must be FREQUENCY_DAILY or FREQUENCY_WEEKLY")
	return subscription.FrequencyUnspecified
}

// weekdayFromProto maps the weekly day, which WEEKLY requires.
func weekdayFromProto(errs *validation.Errors, field string, d subscriberv1.Weekday, f subscriberv1.Frequency) time.Weekday {
	if d == subscriberv1.Weekday_WEEKDAY_UNSPECIFIED {
		if f == subscriberv1.Frequency_FREQUENCY_WEEKLY {
			errs.Add(field, "is required for FREQUENCY_WEEKLY")
		}
		return time.Sunday
	}
	if d < subscriberv1.Weekday_WEEKDAY_MONDAY || d > subscriberv1.Weekday_WEEKDAY_SUNDAY {
		errs.Add(field, "must be a WEEKDAY_ value")
		return time.Sunday
	}
	return time.Weekday(int(d) % 7) // ISO Monday=1 … Sunday=7 → Go Sunday=0
}

func weekdayToProto(d time.Weekday) subscriberv1.Weekday {
	if d == time.Sunday {
		return subscriberv1.Weekday_WEEKDAY_SUNDAY
	}
	return subscriberv1.Weekday(d)
}
