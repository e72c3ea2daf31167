package queue

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/validation"
)

func TestCheckUnsubscribeURL(t *testing.T) {
	accepted := []string{
		"",
		"https://paperroute.example/unsubscribe?token=abc.def_-",
		"https://paperroute.example:8443/u/%E2%9C%93?t=1&x=2",
		"http://127.0.0.1:8081/unsubscribe?token=x",
		"http://127.0.0.2/u",
		"http://localhost:8081/unsubscribe?token=x",
		"http://[::1]:8081/u",
		"https://x.example/" + strings.Repeat("a", MaxUnsubscribeURLBytes-len("https://x.example/")),
	}
	refused := []string{
		"http://paperroute.example/u",
		"http://127.0.0.1.example/u",
		"ftp://x.example/u",
		"mailto:unsubscribe@example.com",
		"https:///path-only",
		"//x.example/u",
		"https://x.example/u\r\nBcc: a@example.com",
		"https://x.example/u%0d%0aBcc:a",
		"https://x.example/u?t=%00",
		"https://x.example/<u>",
		`https://x.example/"u"`,
		"https://x.example/a b",
		"https://x.example/é",
		"https://u:p@x.example/u",
		"HTTPS://x.example/u",
		"https://x.example/%zz",
		"https://x.example/" + strings.Repeat("a", MaxUnsubscribeURLBytes),
	}
	for _, raw := range accepted {
		var errs validation.Errors
		checkUnsubscribeURL(&errs, "url", raw)
		if err := errs.Err(); err != nil {
			t.Errorf("%q refused: %v", raw, err)
		}
	}
	for _, raw := range refused {
		var errs validation.Errors
		checkUnsubscribeURL(&errs, "url", raw)
		if errs.Err() == nil {
			t.Errorf("%q accepted", raw)
		}
	}
}

func TestValidateContent(t *testing.T) {
	ok := []Content{
		{Subject: "s", Text: "t"},
		{Subject: "s", HTML: "<p>h</p>"},
		{Subject: strings.Repeat("s", MaxSubjectBytes), Text: strings.Repeat("t", MaxBodyBytes), HTML: strings.Repeat("h", MaxBodyBytes)},
		{Subject: "Unicode ▲ 118 · ok", Text: "line\r\nbreaks\tand tabs are fine in bodies"},
	}
	bad := []Content{
		{},
		{Subject: "s"},
		{Subject: "a\rb", Text: "t"},
		{Subject: "a\u2028b\x7f", Text: "t"},
		{Subject: "\xff", Text: "t"},
		{Subject: "s", Text: "\xff"},
		{Subject: "s", HTML: "a\x00"},
		{Subject: strings.Repeat("s", MaxSubjectBytes+1), Text: "t"},
		{Subject: "s", Text: strings.Repeat("t", MaxBodyBytes+1)},
	}
	for _, c := range ok {
		if err := ValidateContent(c); err != nil {
			t.Errorf("ValidateContent(%.40q…) = %v", c.Subject, err)
		}
	}
	for _, c := range bad {
		if err := ValidateContent(c); err == nil {
			t.Errorf("ValidateContent(%.40q / %.20q) accepted", c.Subject, c.Text)
		}
	}
}

// ListMessages' creation-time bounds: a reversed or empty range, or a date
// no queue can hold, is an InvalidArgument naming the field, checked before
// the store is asked.
func TestListMessagesChecksTheTimeRange(t *testing.T) {
	svc := NewService(nil, nil) // never reaches the store
	day := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		f     ListFilter
		field string
	}{
		{"reversed", ListFilter{CreatedAfter: day, CreatedBefore: day.Add(-time.Hour)}, "created_before"},
		{"empty", ListFilter{CreatedAfter: day, CreatedBefore: day}, "created_before"},
		{"before 2000", ListFilter{CreatedAfter: time.Date(1970, 1, 1, 0, 0, 1, 0, time.UTC)}, "created_after"},
		{"seconds read as milliseconds", ListFilter{CreatedBefore: time.UnixMilli(1_764_460_800)}, "created_before"},
		{"year 3000", ListFilter{CreatedBefore: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}, "created_before"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := svc.ListMessages(context.Background(), tt.f, 0, "")
			var verr *validation.Error
			if !errors.As(err, &verr) || len(verr.Violations) != 1 || verr.Violations[0].Field != tt.field {
				t.Errorf("ListMessages(%s) = %v, want one violation of %s", tt.name, err, tt.field)
			}
		})
	}
}
