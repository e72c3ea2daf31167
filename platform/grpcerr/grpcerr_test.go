package grpcerr_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/paperroute/paperroute/platform/grpcerr"
	"github.com/paperroute/paperroute/platform/validation"
)

var errNotFound = errors.New("thing not found")

func TestTableStatus(t *testing.T) {
	table := grpcerr.Table{
		{Err: errNotFound, Code: codes.NotFound, Message: "no such thing"},
	}
	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
		wantMsg  string
	}{
		{"nil", nil, codes.OK, ""},
		{"mapped, wrapped", fmt.Errorf("store: get x: %w", errNotFound), codes.NotFound, "no such thing"},
		{"unmapped hides the cause", errors.New("redis: connection refused at 10.0.0.3"), codes.Internal, "internal error"},
		{"canceled", fmt.Errorf("op: %w", context.Canceled), codes.Canceled, "request canceled"},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded, "deadline exceeded"},
		{"existing status kept", status.Error(codes.Unauthenticated, "who are you"), codes.Unauthenticated, "who are you"},
		{"dependency down", fmt.Errorf("redisstore: get x: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), codes.Unavailable, "temporarily unavailable; retry with backoff"},
		{"downstream status wrapped is not passed on", fmt.Errorf("enqueue confirmation: %w", status.Error(codes.Unavailable, "sender: connection refused 10.0.0.9")), codes.Internal, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := table.Status(tt.err)
			st := status.Convert(got)
			if st.Code() != tt.wantCode || (tt.err != nil && st.Message() != tt.wantMsg) {
				t.Errorf("Status(%v) = %v %q, want %v %q", tt.err, st.Code(), st.Message(), tt.wantCode, tt.wantMsg)
			}
			if tt.err != nil && !errors.Is(got, tt.err) {
				t.Errorf("Status(%v) does not wrap the cause", tt.err)
			}
		})
	}
}

func TestValidationBecomesBadRequest(t *testing.T) {
	var v validation.Errors
	v.Add("email", "is not a valid address")
	v.Add("topics[0]", "is not a known topic")
	err := grpcerr.Table{}.Status(fmt.Errorf("subscribe: %w", v.Err()))
	if got := status.Code(err); got != codes.InvalidArgument {
		t.Fatalf("code = %v, want InvalidArgument", got)
	}
	got := grpcerr.FieldViolations(err)
	want := map[string]string{"email": "is not a valid address", "topics[0]": "is not a known topic"}
	if len(got) != len(want) {
		t.Fatalf("violations = %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("violation %q = %q, want %q", k, got[k], w)
		}
	}
}

func TestCauseIsLoggedNotSent(t *testing.T) {
	cause := errors.New("redis: READONLY You can't write against a read only replica")
	err := grpcerr.Table{}.Status(cause)
	if st := status.Convert(err); st.Message() != "internal error" {
		t.Errorf("caller sees %q, want %q", st.Message(), "internal error")
	}
	if want := "Internal: " + cause.Error(); err.Error() != want {
		t.Errorf("log text = %q, want %q", err.Error(), want)
	}
}
