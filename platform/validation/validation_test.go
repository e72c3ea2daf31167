package validation_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/platform/validation"
)

func TestErrorsCollectsEveryViolation(t *testing.T) {
	var v validation.Errors
	if err := v.Err(); err != nil {
		t.Fatalf("empty Errors.Err() = %v, want nil", err)
	}
	v.Add("email", "is required")
	v.Addf("page_size", "must be at most %d", 1000)
	v.Merge("messages[2].", &validation.Error{Violations: []validation.Violation{{Field: "recipient", Description: "is not an address"}}})

	err := v.Err()
	var verr *validation.Error
	if !errors.As(err, &verr) {
		t.Fatalf("Err() = %T, want *validation.Error", err)
	}
	want := []validation.Violation{
		{Field: "email", Description: "is required"},
		{Field: "page_size", Description: "must be at most 1000"},
		{Field: "messages[2].recipient", Description: "is not an address"},
	}
	if diff := cmp.Diff(want, verr.Violations); diff != "" {
		t.Errorf("violations (-want +got):\n%s", diff)
	}
	if got, want := err.Error(), "invalid request: email: is required; page_size: must be at most 1000; messages[2].recipient: is not an address"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestErrIsACopy(t *testing.T) {
	var v validation.Errors
	v.Add("a", "x")
	err := v.Err().(*validation.Error)
	v.Add("b", "y")
	if len(err.Violations) != 1 {
		t.Errorf("adding after Err changed the returned error: %v", err)
	}
}
