package redisstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	sub.Preferences, err = decodePreferences(rawPreferencesOf(m))
	if err != nil {
		errs = append(errs, fmt.Errorf("record %s: %w", id, err))
	}
	if err := errors.Join(errs...); err != nil {
		return subscription.Subscriber{}, err
	}
	return sub, nil
}

// dueFields are the fields decodeDue reads, in its order.
var dueFields = [...]string{fID, fEmail, fState, fEpoch, fTopics, fKeywords, fFrequency, fWeeklyDay, fDeliveryHour, fTimezone, fLocale}

// decodeDue parses the reply of an HMGET of dueFields: a record with only
// ID, Email, State, TokenEpoch and Preferences set. A record that is gone
// (every field nil) is ErrNotFound; other fields are checked as
// decodeFields checks them.
func decodeDue(id string, vals []any) (subscription.Subscriber, error) {
	if len(vals) != len(dueFields) {
		return subscription.Subscriber{}, fmt.Errorf("record %s: %d fields read, want %d", id, len(vals), len(dueFields))
	}
	var v [len(dueFields)]string
	present := false
	for i, x := range vals {
		if x != nil {
			present = true
			v[i], _ = x.(string)
		}
	}
	if !present {
		return subscription.Subscriber{}, subscription.ErrNotFound
	}
	if v[0] != id {
		return subscription.Subscriber{}, fmt.Errorf("record %s: id field is %q", id, v[0])
	}
	state, err := subscription.ParseState(v[2])
	if err != nil {
		return subscription.Subscriber{}, fmt.Errorf("record %s: %w", id, err)
	}
	epoch, err := strconv.ParseUint(v[3], 10, 64)
	if err != nil {
		return subscription.Subscriber{}, fmt.Errorf("record %s: token epoch %q: %w", id, v[3], err)
	}
	prefs, err := decodePreferences(rawPreferences{
		topics: v[4], keywords: v[5], frequency: v[6], weeklyDay: v[7], deliveryHour: v[8], timezone: v[9], locale: v[10],
	})
	if err != nil {
		return subscription.Subscriber{}, fmt.Errorf("record %s: %w", id, err)
	}
	return subscription.Subscriber{ID: id, Email: v[1], State: state, TokenEpoch: epoch, Preferences: prefs}, nil
}

// encodeList stores a list as JSON (ids and keywords may hold commas).
func encodeList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // []string always marshals
	return string(b)
}

// rawPreferences are the preference fields of a record as stored.
type rawPreferences struct {
	topics, keywords, frequency, weeklyDay, deliveryHour, timezone, locale string
}

func rawPreferencesOf(m map[string]string) rawPreferences {
	return rawPreferences{
		topics: m[fTopics], keywords: m[fKeywords], frequency: m[fFrequency], weeklyDay: m[fWeeklyDay],
		deliveryHour: m[fDeliveryHour], timezone: m[fTimezone], locale: m[fLocale],
	}
}

func decodePreferences(r rawPreferences) (subscription.Preferences, error) {
	var p subscription.Preferences
	if r.frequency == "" || r.frequency == "unspecified" {
		// A record from before preferences existed: the defaults of then.
		return subscription.Preferences{Topics: []string{}, Keywords: []string{}, Frequency: subscription.FrequencyDaily, DeliveryHour: 7, Timezone: "UTC", Locale: "en"}, nil
	}
	var errs []error
	var err error
	if p.Topics, err = decodeList(r.topics); err != nil {
		errs = append(errs, fmt.Errorf("topics: %w", err))
	}
	if p.Keywords, err = decodeList(r.keywords); err != nil {
		errs = append(errs, fmt.Errorf("keywords: %w", err))
	}
	f, err := subscription.ParseFrequency(r.frequency)
	errs = append(errs, err)
	p.Frequency = f
	day, err := strconv.Atoi(r.weeklyDay)
	errs = append(errs, err)
	p.WeeklyDay = time.Weekday(day)
	p.DeliveryHour, err = strconv.Atoi(r.deliveryHour)
	errs = append(errs, err)
	p.Timezone = r.timezone
	p.Locale = r.locale
	return p, errors.Join(errs...)
}

// decodeList reads a list stored by encodeList. The lists encodeList makes
// of plain ASCII (topic ids, most keywords) are split here directly, the
// rest go through encoding/json, which gives the same result for those
// (ListDue decodes two lists per due subscriber).
func decodeList(s string) ([]string, error) {
	if l, ok := splitPlainList(s); ok {
		return l, nil
	}
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, err
	}
	return l, nil
}

// splitPlainList splits a compact JSON array of strings made of printable
// ASCII other than '"' and '\' (so nothing is escaped), as json.Marshal
// writes it: ["a","b"]. Anything else is not ok.
func splitPlainList(s string) ([]string, bool) {
	if s == "[]" {
		return []string{}, true
	}
	if len(s) < 4 || s[0] != '[' || s[len(s)-1] != ']' {
		return nil, false
	}
	n := 0
	for i := 1; i < len(s)-1; i++ {
		switch c := s[i]; {
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return nil, false
		case c == '"':
			n++
		}
	}
	if n%2 != 0 {
		return nil, false
	}
	l := make([]string, 0, n/2)
	rest := s[1 : len(s)-1]
	for {
		if len(rest) < 2 || rest[0] != '"' {
			return nil, false
		}
		end := strings.IndexByte(rest[1:], '"') + 1
		if end == 0 {
			return nil, false
		}
		l = append(l, rest[1:end])
		rest = rest[end+1:]
		if rest == "" {
			return l, true
		}
		if rest[0] != ',' {
			return nil, false
		}
		rest = rest[1:]
	}
}
