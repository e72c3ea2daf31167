package subscription

import (
	// The IANA time zone database is built in, so every zone a subscriber
	// picks loads on any host, with or without /usr/share/zoneinfo.
	_ "time/tzdata"

	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/paperroute/paperroute/platform/validation"
)

// Bounds on preferences.
const (
	// MaxTopics bounds Preferences.Topics.
	MaxTopics = 50
	// MaxKeywords bounds Preferences.Keywords.
	MaxKeywords = 20
	// MaxKeywordLength is in characters.
	MaxKeywordLength = 64
	// MaxTimezoneLength and MaxLocaleLength are in bytes.
	MaxTimezoneLength = 64
	MaxLocaleLength   = 35
	// DefaultLocale is the locale of a sign-up that names none.
	DefaultLocale = "en"
)

// Catalogue is the topic catalogue subscribers choose from. The digest
// service owns it; see docs/subscriber.md ("topic catalogue") for where the
// subscriber service reads it from.
type Catalogue interface {
	// Topics returns every topic, in display order.
	Topics(ctx context.Context) ([]Topic, error)
}

// StaticCatalogue is a fixed Catalogue.
type StaticCatalogue []Topic

// Topics implements Catalogue.
func (c StaticCatalogue) Topics(context.Context) ([]Topic, error) { return c, nil }

// localeRE is the shape of a BCP 47 tag, loosely: language, then subtags.
var localeRE = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$`)

// prefInput is preferences as a request states them, before defaults.
type prefInput struct {
	topics, keywords []string
	frequency        Frequency
	weeklyDay        time.Weekday
	deliveryHour     *int
	timezone, locale string
}

// checkPreferences validates in against the catalogue, filling defaults,
// and records problems in errs under the proto field names (prefix is ""
// for SubscribeRequest, "preferences." inside a Preferences message).
func (s *Service) checkPreferences(ctx context.Context, errs *validation.Errors, prefix string, in prefInput) (Preferences, error) {
	p := Preferences{
		Frequency:    in.frequency,
		WeeklyDay:    in.weeklyDay,
		DeliveryHour: s.defaultHour,
		Timezone:     in.timezone,
		Locale:       in.locale,
	}
	if in.deliveryHour != nil {
		p.DeliveryHour = *in.deliveryHour
	}
	if p.Frequency == FrequencyUnspecified {
		p.Frequency = FrequencyDaily
	}
	if p.Timezone == "" {
		p.Timezone = s.defaultTZ
	}
	if p.Locale == "" {
		p.Locale = DefaultLocale
	}
	switch p.Frequency {
	case FrequencyDaily:
		p.WeeklyDay = time.Sunday
	case FrequencyWeekly:
		if in.weeklyDay < time.Sunday || in.weeklyDay > time.Saturday {
			errs.Add(prefix+"weekly_day", "must be a day of the week")
		}
	default:
		errs.Add(prefix+"frequency", "must be FREQUENCY_DAILY or FREQUENCY_WEEKLY")
	}
	if p.DeliveryHour < 0 || p.DeliveryHour > 23 {
		errs.Add(prefix+"delivery_hour", "must be an hour from 0 to 23")
	}
	if _, err := LoadLocation(p.Timezone); err != nil {
		errs.Add(prefix+"timezone", "must be an IANA time zone name such as Europe/Berlin")
	}
	if len(p.Locale) > MaxLocaleLength || !localeRE.MatchString(p.Locale) {
		errs.Add(prefix+"locale", "must be a BCP 47 language tag such as en or de-CH")
	}
	var err error
	p.Topics, err = s.checkTopics(ctx, errs, prefix+"topics", in.topics)
	if err != nil {
		return Preferences{}, err
	}
	p.Keywords = checkKeywords(errs, prefix+"keywords", in.keywords)
	return p, nil
}

// LoadLocation loads an IANA time zone, refusing names time.LoadLocation
// would read as a file path or accept as the process's local zone.
func LoadLocation(name string) (*time.Location, error) {
	if name == "" || name == "Local" || len(name) > MaxTimezoneLength || strings.Contains(name, "..") || strings.HasPrefix(name, "/") {
		return nil, fmt.Errorf("subscription: time zone %q is not an IANA name", name)
	}
	return time.LoadLocation(name)
}

// checkTopics keeps the first of repeated ids and refuses unknown ones.
func (s *Service) checkTopics(ctx context.Context, errs *validation.Errors, field string, ids []string) ([]string, error) {
	if len(ids) > MaxTopics {
		errs.Addf(field, "must name at most %d topics", MaxTopics)
		return nil, nil
	}
	if len(ids) == 0 {
		return []string{}, nil
	}
	cat, err := s.catalogue.Topics(ctx)
	if err != nil {
		return nil, fmt.Errorf("subscription: read topic catalogue: %w", err)
	}
	known := make(map[string]bool, len(cat))
	for _, t := range cat {
		known[t.ID] = true
	}
	out := make([]string, 0, len(ids))
	for i, id := range ids {
		switch {
		case !known[id]:
			errs.Addf(fmt.Sprintf("%s[%d]", field, i), "is not a topic of the catalogue (see ListTopics)")
		case !slices.Contains(out, id):
			out = append(out, id)
		}
	}
	return out, nil
}

// checkKeywords trims keywords, drops empty and repeated ones (compared
// case-insensitively) and bounds count and length.
func checkKeywords(errs *validation.Errors, field string, in []string) []string {
	if len(in) > MaxKeywords {
		errs.Addf(field, "must hold at most %d keywords", MaxKeywords)
		return nil
	}
	out := make([]string, 0, len(in))
	seen := map[string]bool{}
	for i, k := range in {
		k = strings.TrimSpace(k)
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !utf8.ValidString(k) || !allPrint(k):
			errs.Add(f, "must be printable text")
		case utf8.RuneCountInString(k) > MaxKeywordLength:
			errs.Addf(f, "must be at most %d characters", MaxKeywordLength)
		case k == "" || seen[strings.ToLower(k)]:
		default:
			seen[strings.ToLower(k)] = true
			out = append(out, k)
		}
	}
	return out
}

// Topics returns the topic catalogue, for the subscribe and preferences
// pages.
func (s *Service) Topics(ctx context.Context) ([]Topic, error) {
	t, err := s.catalogue.Topics(ctx)
	if err != nil {
		return nil, fmt.Errorf("subscription: read topic catalogue: %w", err)
	}
	return t, nil
}
