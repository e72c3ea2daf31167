// Package sendertest runs a small fake of the sender service for tests: the
// real generated SenderService server over loopback TCP, behind the real
// platform gRPC server with the INTERNAL auth policy, that keeps what it is
// asked to Enqueue (once per idempotency key, as the sender promises) and
// renders the {{variables}} as the sender would, so tests can read a mail's
// text and follow its links. It can be switched to answer Unavailable.
package sendertest

import (
	"context"
	"html"
	"net"
	"regexp"
	"sync"
	"testing"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/platform/auth"
	"github.com/paperroute/paperroute/platform/grpcserver"
	"github.com/paperroute/paperroute/platform/logging"
	"github.com/paperroute/paperroute/platform/metrics"
)

// AdminToken is the fake's operator token; callers use their service token.
const AdminToken = "sendertest-admin-token"

// Mail is one accepted message, with its variables filled in.
type Mail struct {
	IdempotencyKey string
	To             string
	Lane           senderv1.Lane
	Subject        string
	Text           string
	HTML           string
	// ListUnsubscribeURL is as given.
	ListUnsubscribeURL string
	// Variables are as given.
	Variables map[string]string
}

// Fake is a running fake sender.
type Fake struct {
	senderv1.UnimplementedSenderServiceServer

	addr     string
	variable *regexp.Regexp // the sender's template variable syntax

	mu          sync.Mutex
	unavailable bool
	calls       int
	mails       []Mail
	keys        map[string]bool
}

// Start starts a fake sender accepting serviceToken and stops it when t
// ends.
func Start(t testing.TB, serviceToken string) *Fake {
	t.Helper()
	authz, err := auth.NewAuthorizer(auth.Policy{
		senderv1.SenderService_Enqueue_FullMethodName: auth.Internal,
	}, auth.Tokens{Admin: AdminToken, Service: serviceToken})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := grpcserver.New(grpcserver.Config{Logger: logging.Discard(), Registerer: metrics.NewRegistry(), Authorizer: authz})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &Fake{
		addr:     lis.Addr().String(),
		variable: regexp.MustCompile(`\{\{([a-z][a-z0-9_]{0,63})\}\}`),
		keys:     map[string]bool{},
	}
	senderv1.RegisterSenderServiceServer(srv.GRPC, f)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sendertest: %v", err)
		}
	})
	return f
}

// Addr is the fake's host:port.
func (f *Fake) Addr() string { return f.addr }

// SetUnavailable makes every Enqueue fail with Unavailable (true) or
// succeed again (false).
func (f *Fake) SetUnavailable(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unavailable = v
}

// Mails returns the accepted mails in order, one per idempotency key.
func (f *Fake) Mails() []Mail {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Mail(nil), f.mails...)
}

// Calls is how many Enqueue calls arrived (including refused and duplicate
// ones).
func (f *Fake) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Enqueue implements senderv1.SenderServiceServer with the sender's
// contract: all-or-nothing validation, duplicate keys accepted once.
func (f *Fake) Enqueue(_ context.Context, req *senderv1.EnqueueRequest) (*senderv1.EnqueueResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.unavailable {
		return nil, status.Error(codes.Unavailable, "sendertest: unavailable")
	}
	var rendered []Mail
	for _, m := range req.GetMessages() {
		mail, err := f.render(m)
		if err != nil {
			return nil, err
		}
		rendered = append(rendered, mail)
	}
	res := &senderv1.EnqueueResponse{}
	for _, mail := range rendered {
		dup := f.keys[mail.IdempotencyKey]
		if !dup {
			f.keys[mail.IdempotencyKey] = true
			f.mails = append(f.mails, mail)
		}
		res.Results = append(res.Results, &senderv1.EnqueueResult{IdempotencyKey: mail.IdempotencyKey, MessageId: mail.IdempotencyKey, Duplicate: dup})
	}
	return res, nil
}

func (f *Fake) render(m *senderv1.OutboundMessage) (Mail, error) {
	invalid := func(msg string) (Mail, error) { return Mail{}, status.Error(codes.InvalidArgument, "sendertest: "+msg) }
	c := m.GetContent()
	switch {
	case m.GetIdempotencyKey() == "" || len(m.GetIdempotencyKey()) > 200:
		return invalid("idempotency_key must be 1-200 bytes")
	case m.GetRecipient() == "":
		return invalid("recipient is required")
	case m.GetLane() == senderv1.Lane_LANE_UNSPECIFIED:
		return invalid("lane is required")
	case m.GetContentId() != "":
		return invalid("this fake only handles inline content")
	case c == nil || c.GetSubject() == "" || (c.GetTextBody() == "" && c.GetHtmlBody() == ""):
		return invalid("content needs a subject and a body")
	}
	for name, v := range m.GetVariables() {
		if len(v) > 2048 || containsControl(v) {
			return invalid("variable " + name + " is too long or has control characters")
		}
	}
	var missing string
	fill := func(tmpl string, escape func(string) string) string {
		return f.variable.ReplaceAllStringFunc(tmpl, func(ref string) string {
			name := ref[2 : len(ref)-2]
			v, ok := m.GetVariables()[name]
			if !ok {
				missing = name
			}
			return escape(v)
		})
	}
	mail := Mail{
		IdempotencyKey:     m.GetIdempotencyKey(),
		To:                 m.GetRecipient(),
		Lane:               m.GetLane(),
		Subject:            fill(c.GetSubject(), func(s string) string { return s }),
		Text:               fill(c.GetTextBody(), func(s string) string { return s }),
		HTML:               fill(c.GetHtmlBody(), html.EscapeString),
		ListUnsubscribeURL: m.GetListUnsubscribeUrl(),
		Variables:          m.GetVariables(),
	}
	if missing != "" {
		return invalid("template variable {{" + missing + "}} has no value")
	}
	return mail, nil
}

func containsControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}
