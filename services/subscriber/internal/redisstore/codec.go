package redisstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/paperroute/paperroute/platform/redisclient"

	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// Record hash fields.
const (
	fID                 = "id"
	fEmail              = "email"
	fState              = "state"
	fEpoch              = "token_epoch"
	fCreateTime         = "create_time"
	fUpdateTime         = "update_time"
	fConsentVersion     = "consent_text_version"
	fSignupTime         = "signup_time"
	fSignupIP           = "signup_ip"
	fSignupUA           = "signup_user_agent"
	fConfirmTime        = "confirm_time"
	fConfirmIP          = "confirm_ip"
	fConfirmUA          = "confirm_user_agent"
	fUnsubscribeTime    = "unsubscribe_time"
	fUnsubscribeChannel = "unsubscribe_channel"
	fSource             = "source"
	fEmailHash          = "email_hash"
	fTopics             = "topics"
	fKeywords           = "keywords"
	fFrequency          = "frequency"
	fWeeklyDay          = "weekly_day"
	fDeliveryHour       = "delivery_hour"
	fTimezone           = "timezone"
	fLocale             = "locale"
	fSuppressReason     = "suppress_reason"
	fSuppressTime       = "suppress_time"
)

// encode writes every field, empty ones included, so an HSET replaces the
// whole record.
func encode(s subscription.Subscriber, emailHash string) map[string]any {
	c := s.Consent
	p := s.Preferences
	return map[string]any{
		fEmailHash:          emailHash,
		fSource:             c.Source,
		fTopics:             encodeList(p.Topics),
		fKeywords:           encodeList(p.Keywords),
		fFrequency:          p.Frequency.String(),
		fWeeklyDay:          strconv.Itoa(int(p.WeeklyDay)),
		fDeliveryHour:       strconv.Itoa(p.DeliveryHour),
		fTimezone:           p.Timezone,
		fLocale:             p.Locale,
		fSuppressReason:     s.SuppressReason,
		fSuppressTime:       redisclient.FormatTime(s.SuppressTime),
		fID:                 s.ID,
		fEmail:              s.Email,
		fState:              s.State.String(),
		fEpoch:              strconv.FormatUint(s.TokenEpoch, 10),
		fCreateTime:         redisclient.FormatTime(s.CreateTime),
		fUpdateTime:         redisclient.FormatTime(s.UpdateTime),
		fConsentVersion:     c.ConsentTextVersion,
		fSignupTime:         redisclient.FormatTime(c.SignupTime),
		fSignupIP:           c.SignupIP,
		fSignupUA:           c.SignupUserAgent,
		fConfirmTime:        redisclient.FormatTime(c.ConfirmTime),
		fConfirmIP:          c.ConfirmIP,
		fConfirmUA:          c.ConfirmUserAgent,
		fUnsubscribeTime:    redisclient.FormatTime(c.UnsubscribeTime),
		fUnsubscribeChannel: string(c.UnsubscribeChannel),
	}
}

// decodeRecord parses a record hash and returns it with its address hash;
// an empty one is ErrNotFound.
func decodeRecord(id string, m map[string]string) (subscription.Subscriber, string, error) {
	sub, err := decodeFields(id, m)
	return sub, m[fEmailHash], err
}

func decodeFields(id string, m map[string]string) (subscription.Subscriber, error) {
	if len(m) == 0 {
		return subscription.Subscriber{}, subscription.ErrNotFound
	}
	if m[fID] != id {
		return subscription.Subscriber{}, fmt.Errorf("record %s: id field is %q", id, m[fID])
	}
	state, err := subscription.ParseState(m[fState])
	if err != nil {
		return subscription.Subscriber{}, fmt.Errorf("record %s: %w", id, err)
	}
	epoch, err := strconv.ParseUint(m[fEpoch], 10, 64)
	if err != nil {
		return subscription.Subscriber{}, fmt.Errorf("record %s: token epoch %q: %w", id, m[fEpoch], err)
	}
	var errs []error
	t := func(field string) time.Time {
		v, err := redisclient.ParseTime(m[field])
		if err != nil {
			errs = append(errs, fmt.Errorf("record %s: %s: %w", id, field, err))
		}
		return v
	}
	sub := subscription.Subscriber{
		ID:         id,
		Email:      m[fEmail],
		State:      state,
		TokenEpoch: epoch,
		CreateTime: t(fCreateTime),
		UpdateTime: t(fUpdateTime),
		Consent: subscription.ConsentEvidence{
			ConsentTextVersion: m[fConsentVersion],
			SignupTime:         t(fSignupTime),
			SignupIP:           m[fSignupIP],
			SignupUserAgent:    m[fSignupUA],
			ConfirmTime:        t(fConfirmTime),
			ConfirmIP:          m[fConfirmIP],
			ConfirmUserAgent:   m[fConfirmUA],
			UnsubscribeTime:    t(fUnsubscribeTime),
			UnsubscribeChannel: subscription.Channel(m[fUnsubscribeChannel]),
			Source:             m[fSource],
		},
		SuppressReason: m[fSuppressReason],
		SuppressTime:   t(fSuppressTime),
	}
	sub.Preferences, err = decodePreferences(m)
	if err != nil {
		errs = append(errs, fmt.Errorf("record %s: %w", id, err))
	}
	if err := errors.Join(errs...); err != nil {
		return subscription.Subscriber{}, err
	}
	return sub, nil
}

// encodeList stores a list as JSON (ids and keywords may hold commas).
func encodeList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // []string always marshals
	return string(b)
}

func decodePreferences(m map[string]string) (subscription.Preferences, error) {
	var p subscription.Preferences
	if m[fFrequency] == "" || m[fFrequency] == "unspecified" {
		// A record from before preferences existed: the defaults of then.
		return subscription.Preferences{Topics: []string{}, Keywords: []string{}, Frequency: subscription.FrequencyDaily, DeliveryHour: 7, Timezone: "UTC", Locale: "en"}, nil
	}
	var errs []error
	if err := json.Unmarshal([]byte(m[fTopics]), &p.Topics); err != nil {
		errs = append(errs, fmt.Errorf("topics: %w", err))
	}
	if err := json.Unmarshal([]byte(m[fKeywords]), &p.Keywords); err != nil {
		errs = append(errs, fmt.Errorf("keywords: %w", err))
	}
	f, err := subscription.ParseFrequency(m[fFrequency])
	errs = append(errs, err)
	p.Frequency = f
	day, err := strconv.Atoi(m[fWeeklyDay])
	errs = append(errs, err)
	p.WeeklyDay = time.Weekday(day)
	p.DeliveryHour, err = strconv.Atoi(m[fDeliveryHour])
	errs = append(errs, err)
	p.Timezone = m[fTimezone]
	p.Locale = m[fLocale]
	return p, errors.Join(errs...)
}
