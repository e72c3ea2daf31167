// Package validation describes invalid input field by field, without
// depending on any transport. Domain packages return a *validation.Error; the
// gRPC adapter turns it into InvalidArgument with google.rpc.BadRequest field
// violations (see package grpcerr), and HTTP pages show the descriptions.
package validation

import (
	"fmt"
	"strings"
)

// Violation is one problem with one field of a request.
type Violation struct {
	// Field is the path of the field as the API names it, e.g. "email" or
	// "messages[3].recipient".
	Field string
	// Description says what is wrong, in words a caller can act on.
	Description string
}

// Error is a request that failed validation. It lists every problem found, so
// a caller can fix them all at once.
type Error struct {
	Violations []Violation
}

// Error implements error.
func (e *Error) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Description
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

// Errors collects violations while a request is checked. The zero value is
// ready to use.
type Errors struct {
	violations []Violation
}

// Add records that field is invalid.
func (e *Errors) Add(field, description string) {
	e.violations = append(e.violations, Violation{Field: field, Description: description})
}

// Addf records that field is invalid, formatting the description.
func (e *Errors) Addf(field, format string, args ...any) {
	e.Add(field, fmt.Sprintf(format, args...))
}

// Merge records every violation of err under prefix (e.g. "messages[2]."),
// if err is a *Error; it reports whether it was.
func (e *Errors) Merge(prefix string, err *Error) {
	if err == nil {
		return
	}
	for _, v := range err.Violations {
		e.Add(prefix+v.Field, v.Description)
	}
}

// Len is the number of violations so far.
func (e *Errors) Len() int { return len(e.violations) }

// Err returns a *Error holding the violations, or nil if there are none.
func (e *Errors) Err() error {
	if len(e.violations) == 0 {
		return nil
	}
	return &Error{Violations: append([]Violation(nil), e.violations...)}
}

// Field returns a *Error with a single violation.
func Field(field, description string) error {
	return &Error{Violations: []Violation{{Field: field, Description: description}}}
}
