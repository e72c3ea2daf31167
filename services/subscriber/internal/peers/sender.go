// Package peers holds the subscriber service's clients of other services.
//
// Sender hands the subscriber service's transactional mail
// (confirmations, "already subscribed") to the sender service over gRPC; it
// implements subscription.Mailer.
//
// The mails go on the TRANSACTIONAL lane as inline content with a plain-text
// part and a small HTML part. The address and the link are not written into
// the bodies here but passed as sender template variables ({{email}},
// {{confirm_url}}, {{unsubscribe_url}}), which the sender fills at send time,
// HTML-escaping them in the HTML part. That is deliberate: '{' and '}' are
// legal in the local part of an address, so an address such as
// "{{x}}@example.com" written into a body would itself be read as a template
// variable by the sender. As variables, untrusted values are data, never
// template. The fixed parts of the HTML are rendered once with html/template.
package peers

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	senderv1 "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// SenderClient is the part of the generated sender client this package uses.
type SenderClient interface {
	Enqueue(ctx context.Context, in *senderv1.EnqueueRequest, opts ...grpc.CallOption) (*senderv1.EnqueueResponse, error)
	CancelRecipient(ctx context.Context, in *senderv1.CancelRecipientRequest, opts ...grpc.CallOption) (*senderv1.CancelRecipientResponse, error)
}

// callTimeout bounds one Enqueue, so a hung sender cannot hold a Subscribe
// call open indefinitely.
const callTimeout = 10 * time.Second

// Sender is a subscription.Mailer that enqueues on the sender.
type Sender struct {
	sender  SenderClient
	confirm content
	already content
}

var _ subscription.Mailer = (*Sender)(nil)

// content is one mail's template, with the sender's {{variables}}.
type content struct {
	subject, text, html string
}

// NewSender returns a Sender that enqueues through sender (usually
// senderv1.NewSenderServiceClient on a platform/grpcclient connection).
// confirmTTL is how long confirmation links work, as the mail says.
func NewSender(sender SenderClient, confirmTTL time.Duration) (*Sender, error) {
	validity := "The link works for " + humanDuration(confirmTTL) + "."
	confirm, err := render(mailPage{
		Title:  "Confirm your subscription",
		Intro:  "Someone, hopefully you, asked to send the day's trending research papers to {{email}}. Confirm to start receiving them:",
		Button: "Confirm subscription",
		URLVar: "{{confirm_url}}",
		Outro:  "If it was not you, ignore this mail: without confirmation nothing will be sent. " + validity,
	})
	if err != nil {
		return nil, err
	}
	already, err := render(mailPage{
		Title:  "You are already subscribed",
		Intro:  "Someone, probably you, tried to subscribe {{email}} to paperroute, but this address already gets the digest. Nothing has changed. You can change your topics, frequency and delivery hour here:",
		Button: "Manage your preferences",
		URLVar: "{{manage_url}}",
		Outro:  "To stop the digest, unsubscribe: {{unsubscribe_url}}",
	})
	if err != nil {
		return nil, err
	}
	return &Sender{
		sender: sender,
		confirm: content{
			subject: "Confirm your paperroute subscription",
			text: "Someone, hopefully you, asked to send the day's trending research papers to {{email}}.\n\n" +
				"Confirm your subscription by opening this link:\n\n{{confirm_url}}\n\n" +
				"If it was not you, ignore this mail: without confirmation nothing will be sent.\n" +
				validity + "\n",
			html: confirm,
		},
		already: content{
			subject: "You are already subscribed to paperroute",
			text: "Someone, probably you, tried to subscribe {{email}} to paperroute,\n" +
				"but this address already gets the digest. Nothing has changed.\n\n" +
				"Manage your preferences (topics, frequency, delivery hour):\n\n{{manage_url}}\n\n" +
				"To stop the digest, open this link:\n\n{{unsubscribe_url}}\n",
			html: already,
		},
	}, nil
}

// mailPage fills htmlTemplate. Its fields are constants of this package.
// URLVar is a sender variable reference ("{{confirm_url}}"); it goes into
// the href as a whole trusted attribute because html/template would
// otherwise percent-encode its braces.
type mailPage struct {
	Title, Intro, Button, Outro string
	URLVar                      string
}

// humanDuration says d in whole days when it is whole days, else in hours.
func humanDuration(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return plural(int64(d/(24*time.Hour)), "day")
	}
	return plural(max(1, int64((d+time.Hour-1)/time.Hour)), "hour")
}

const htmlTemplate = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{.Title}}</title></head>
<body style="margin:0;padding:24px;background:#f5f5f5;font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#222">
<div style="max-width:520px;margin:0 auto;background:#fff;padding:24px;border-radius:6px">
<h1 style="font-size:20px;margin:0 0 16px">{{.Title}}</h1>
<p style="line-height:1.5">{{.Intro}}</p>
<p style="margin:24px 0"><a {{.Href}} style="background:#1a73e8;color:#fff;padding:10px 18px;border-radius:4px;text-decoration:none">{{.Button}}</a></p>
<p style="line-height:1.5;font-size:13px;color:#555">Or copy this link into your browser:<br>{{.URLVar}}</p>
<p style="line-height:1.5;font-size:13px;color:#555">{{.Outro}}</p>
</div></body></html>
`

func render(p mailPage) (string, error) {
	tmpl, err := template.New("mail").Parse(htmlTemplate)
	if err != nil {
		return "", fmt.Errorf("peers: sender: parse template: %w", err)
	}
	var buf bytes.Buffer
	err = tmpl.Execute(&buf, struct {
		mailPage
		Href template.HTMLAttr
	}{p, template.HTMLAttr(`href="` + p.URLVar + `"`)})
	if err != nil {
		return "", fmt.Errorf("peers: sender: render %q: %w", p.Title, err)
	}
	return buf.String(), nil
}

// SendConfirmation implements subscription.Mailer.
func (m *Sender) SendConfirmation(ctx context.Context, c subscription.ConfirmationMail) error {
	return m.enqueue(ctx, c.IdempotencyKey, c.To, m.confirm, map[string]string{
		"email":       c.To,
		"confirm_url": c.ConfirmURL,
	})
}

// SendAlreadySubscribed implements subscription.Mailer.
func (m *Sender) SendAlreadySubscribed(ctx context.Context, c subscription.AlreadySubscribedMail) error {
	return m.enqueue(ctx, c.IdempotencyKey, c.To, m.already, map[string]string{
		"email":           c.To,
		"unsubscribe_url": c.UnsubscribeURL,
		"manage_url":      c.ManageURL,
	})
}

// CancelRecipient implements subscription.Mailer: the sender drops every
// bulk mail (digests) still queued for address. Transactional mail is left,
// so a later confirmation mail still goes out.
func (m *Sender) CancelRecipient(ctx context.Context, address string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := m.sender.CancelRecipient(ctx, &senderv1.CancelRecipientRequest{Recipient: address})
	if err == nil {
		return nil
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		return fmt.Errorf("peers: sender: cancel recipient: %w (%v)", subscription.ErrMailUnavailable, err)
	}
	return fmt.Errorf("peers: sender: cancel recipient: %v", err)
}

func (m *Sender) enqueue(ctx context.Context, key, to string, c content, vars map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := m.sender.Enqueue(ctx, &senderv1.EnqueueRequest{Messages: []*senderv1.OutboundMessage{{
		IdempotencyKey: key,
		Recipient:      to,
		Lane:           senderv1.Lane_LANE_TRANSACTIONAL,
		Content: &senderv1.Content{
			Subject:  c.subject,
			TextBody: c.text,
			HtmlBody: c.html,
		},
		Variables: vars,
	}}})
	if err == nil {
		return nil
	}
	// The sender's status is kept as text (%v), not wrapped: a wrapped
	// status error would pass through the gRPC error table unchanged and
	// show the sender's internals to our caller.
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		return fmt.Errorf("peers: sender: enqueue %s: %w (%v)", key, subscription.ErrMailUnavailable, err)
	}
	return fmt.Errorf("peers: sender: enqueue %s: %v", key, err)
}
