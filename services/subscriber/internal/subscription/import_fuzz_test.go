package subscription_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/validation"
	"github.com/paperroute/paperroute/services/subscriber/internal/linktoken"
	"github.com/paperroute/paperroute/services/subscriber/internal/memstore"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
	"github.com/paperroute/paperroute/services/subscriber/internal/testenv"
)

type nopMailer struct{}

func (nopMailer) SendConfirmation(context.Context, subscription.ConfirmationMail) error { return nil }
func (nopMailer) SendAlreadySubscribed(context.Context, subscription.AlreadySubscribedMail) error {
	return nil
}
func (nopMailer) CancelRecipient(context.Context, string) error { return nil }

type countJobs struct{ n int }

func (c *countJobs) Push(context.Context, subscription.Job) error { c.n++; return nil }

type allowAll struct{}

func (allowAll) Allow(context.Context, string, string, subscription.Limit) (time.Duration, error) {
	return 0, nil
}

// FuzzImport feeds arbitrary files to Import in both formats: it must never
// panic, every row must be accounted for exactly once, and a refused file
// must be a validation error.
func FuzzImport(f *testing.F) {
	f.Add("email,consent_text_version,consent_time,topics\nada@example.com,v1,2025-01-02T03:04:05Z,llm;rl\nbad,,,\n", true)
	f.Add("uuid,email,name,attributes,status,created_at,updated_at\nx,Grace@Example.org,G,{},enabled,2025-04-02 08:00:00+00,2025-04-02 08:00:00+00\n", true)
	f.Add(`{"email":"a@example.com","delivery_hour":"7","timezone":"Asia/Kathmandu"}`+"\n{\n", false)
	f.Add("email\n\"unterminated\n", true)
	f.Add("\ufeffEMAIL\r\nA@B.CO\r\n", true)
	f.Fuzz(func(t *testing.T, data string, csv bool) {
		kr, err := linktoken.NewKeyring([]linktoken.Key{{ID: "f", Secret: bytes.Repeat([]byte("f"), 32)}})
		if err != nil {
			t.Fatal(err)
		}
		jobs := &countJobs{}
		svc, err := subscription.New(subscription.Config{
			Store: memstore.New(), Mailer: nopMailer{}, Jobs: jobs, Limiter: allowAll{}, Catalogue: testenv.Topics(),
			Keyring: kr, PublicURL: "https://x.example", ConfirmTTL: time.Hour, DefaultDeliveryHour: 7,
			Now: func() time.Time { return time.Date(2026, 6, 12, 9, 0, 0, 0, time.UTC) },
		})
		if err != nil {
			t.Fatal(err)
		}
		format := subscription.ImportJSONLines
		if csv {
			format = subscription.ImportCSV
		}
		rep, err := svc.Import(context.Background(), strings.NewReader(data), subscription.ImportRequest{Format: format, DefaultConsentTextVersion: "v0"})
		if err != nil {
			var verr *validation.Error
			if !errors.As(err, &verr) {
				t.Fatalf("Import error is not a validation error: %v", err)
			}
			return
		}
		if got := rep.ImportedActive + rep.Invited + rep.Existing + rep.Rejected; got != rep.Rows {
			t.Errorf("rows %d, accounted %d: %+v", rep.Rows, got, rep)
		}
		if int64(jobs.n) != rep.Invited {
			t.Errorf("%d jobs for %d invited rows", jobs.n, rep.Invited)
		}
	})
}
