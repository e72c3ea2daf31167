package pages

import (
	"errors"
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paperroute/paperroute/platform/validation"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// prefsForm is the data of the sign-up and preferences forms: what is
// chosen, the choices offered, and the problems to show next to each field.
type prefsForm struct {
	Title     string
	Embed     bool
	Action    string // the form's relative action URL
	FormToken string
	Notice    string // a success note above the form
	Problem   string // a problem with the whole form

	Email          string
	Topics         []topicChoice
	ShowKeywords   bool
	Keywords       string
	Frequency      string // "daily" or "weekly"
	Weekdays       []choice
	Hours          []choice
	Timezones      []tzChoice
	TimezoneChosen bool // the reader chose; the script must not override
	Consent        Consent
	Script         template.HTML

	// Errors are field problems by form field name.
	Errors map[string]string
}

type topicChoice struct {
	ID, Label string
	Checked   bool
}

type choice struct {
	Value    string
	Label    string
	Selected bool
}

type tzChoice struct {
	Name     string
	Selected bool
}

// formValues are the choices a form states, parsed but not yet validated by
// the domain.
type formValues struct {
	topics    []string
	keywords  []string
	frequency subscription.Frequency
	weekday   time.Weekday
	hour      int
	timezone  string
}

// weekdays in the order a week is shown (ISO: Monday first); the form
// value is the lower-case English name.
var weekdays = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}

// parseChoices reads the choice fields of a posted form into v, recording
// values no form of ours can send in errs under the form field name. Text
// is passed on as typed (bounded by MaxBodyBytes): the domain validates it.
func parseChoices(form url.Values, errs map[string]string) formValues {
	v := formValues{
		topics:    form["topics"],
		keywords:  splitKeywords(form.Get("keywords")),
		frequency: subscription.FrequencyDaily,
		weekday:   time.Monday,
		timezone:  form.Get("timezone"),
	}
	switch form.Get("frequency") {
	case "daily", "":
	case "weekly":
		v.frequency = subscription.FrequencyWeekly
	default:
		errs["frequency"] = "Choose daily or weekly."
	}
	if day := form.Get("weekday"); day != "" {
		i := slices.IndexFunc(weekdays, func(d time.Weekday) bool { return strings.ToLower(d.String()) == day })
		if i < 0 {
			errs["weekday"] = "Choose a day of the week."
		} else {
			v.weekday = weekdays[i]
		}
	}
	hour, err := strconv.Atoi(form.Get("hour"))
	if err != nil || hour < 0 || hour > 23 || len(form.Get("hour")) > 2 {
		errs["hour"] = "Choose an hour of the day."
	}
	v.hour = hour
	if v.timezone == "" {
		errs["timezone"] = "Choose a time zone."
	}
	return v
}

// splitKeywords splits the keyword field at commas and line breaks.
func splitKeywords(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' })
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// fill sets the chosen values of f from v, and the choices offered.
func (h *Handler) fill(f *prefsForm, catalogue []subscription.Topic, v formValues) {
	f.Topics = make([]topicChoice, 0, len(catalogue))
	for _, t := range catalogue {
		f.Topics = append(f.Topics, topicChoice{ID: t.ID, Label: t.Label, Checked: slices.Contains(v.topics, t.ID)})
	}
	f.Keywords = cleanText(strings.Join(v.keywords, ", "))
	f.Frequency = "daily"
	if v.frequency == subscription.FrequencyWeekly {
		f.Frequency = "weekly"
	}
	f.Weekdays = make([]choice, 0, len(weekdays))
	for _, d := range weekdays {
		f.Weekdays = append(f.Weekdays, choice{Value: strings.ToLower(d.String()), Label: d.String(), Selected: d == v.weekday})
	}
	f.Hours = make([]choice, 24)
	for i := range f.Hours {
		f.Hours[i] = choice{Value: strconv.Itoa(i), Label: fmt.Sprintf("%02d:00", i), Selected: i == v.hour}
	}
	f.Timezones = timezoneChoices(v.timezone)
}

// fieldOf maps a domain validation field ("email", "topics[2]",
// "preferences.delivery_hour", ...) to the form field that shows it.
func fieldOf(field string) string {
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		field = field[i+1:]
	}
	if i := strings.IndexByte(field, '['); i >= 0 {
		field = field[:i]
	}
	switch field {
	case "email", "topics", "keywords", "frequency", "timezone":
		return field
	case "weekly_day":
		return "weekday"
	case "delivery_hour":
		return "hour"
	case "consent_text_version":
		return "consent"
	}
	return ""
}

// fieldErrors moves the violations of a domain validation error into errs
// (the first per form field wins) and reports whether err was one; a
// violation no form field shows becomes the form's problem.
func fieldErrors(err error, errs map[string]string, problem *string) bool {
	var verr *validation.Error
	if !errors.As(err, &verr) {
		return false
	}
	for _, v := range verr.Violations {
		msg := describe(v.Field, v.Description)
		f := fieldOf(v.Field)
		switch {
		case f == "":
			if *problem == "" {
				*problem = msg
			}
		case errs[f] == "":
			errs[f] = msg
		}
	}
	return true
}

// describe turns a violation into a sentence for the reader.
func describe(field, description string) string {
	name := map[string]string{
		"email": "The email address", "topics": "A topic", "keywords": "A keyword",
		"timezone": "The time zone", "delivery_hour": "The hour", "weekly_day": "The day",
		"frequency": "The frequency", "consent_text_version": "The consent text",
	}
	base := field
	if i := strings.LastIndexByte(base, '.'); i >= 0 {
		base = base[i+1:]
	}
	if i := strings.IndexByte(base, '['); i >= 0 {
		base = base[:i]
	}
	subject, ok := name[base]
	if !ok {
		subject = "The request"
	}
	return subject + " " + description + "."
}
