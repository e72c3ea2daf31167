package smtpmail_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/paperroute/paperroute/services/sender/internal/delivery"
	"github.com/paperroute/paperroute/services/sender/internal/mailtemplate"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
	"github.com/paperroute/paperroute/services/sender/internal/smtpmail"
)

// A signed message verifies with go-msgauth's verifier against the
// published key, and the signature covers the headers RFC 8058 needs.
func TestDKIMSignatureVerifies(t *testing.T) {
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPub, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	for _, tt := range []struct {
		name   string
		signer crypto.Signer
		record string
	}{
		{"ed25519", edKey, "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(edPub)},
		{"rsa-2048", rsaKey, "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(rsaPub)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The key goes through the PEM parser the service uses.
			der, err := x509.MarshalPKCS8PrivateKey(tt.signer)
			if err != nil {
				t.Fatal(err)
			}
			signer, err := smtpmail.ParseDKIMKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
			if err != nil {
				t.Fatal(err)
			}
			mc := catcher(t)
			c := dial(t, mailer(t, mc.Addr(), func(c *smtpmail.Config) {
				c.DKIM = &smtpmail.DKIM{Domain: "paperroute.example", Selector: "pr1", Signer: signer}
			}))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = c.Send(ctx, &delivery.Mail{MessageID: queue.MessageID("dkim"), To: "ada@example.com", Lane: queue.LaneBulk,
				Rendered:           mailtemplate.Rendered{Subject: "Today's papers ▲", Text: "text part", HTML: "<p>html part</p>"},
				ListUnsubscribeURL: "https://paperroute.example/unsubscribe?t=abc"})
			if err != nil {
				t.Fatal(err)
			}
			msgs := mc.Messages()
			if len(msgs) != 1 {
				t.Fatalf("%d messages", len(msgs))
			}
			vs, err := dkim.VerifyWithOptions(bytes.NewReader(msgs[0].Data), &dkim.VerifyOptions{
				LookupTXT: func(domain string) ([]string, error) {
					if domain != "pr1._domainkey.paperroute.example" {
						t.Errorf("looked up %s", domain)
					}
					return []string{tt.record}, nil
				},
			})
			if err != nil || len(vs) != 1 {
				t.Fatalf("verify: %v, %d signatures", err, len(vs))
			}
			if vs[0].Err != nil {
				t.Fatalf("the signature does not verify: %v", vs[0].Err)
			}
			var signed []string
			for _, h := range vs[0].HeaderKeys {
				signed = append(signed, strings.ToLower(h))
			}
			for _, want := range smtpmail.DKIMHeaders() {
				if !slices.Contains(signed, strings.ToLower(want)) {
					t.Errorf("%s is not signed (signed: %v)", want, signed)
				}
			}
			// A changed subject breaks the signature.
			tampered := bytes.Replace(msgs[0].Data, []byte("Subject: "), []byte("Subject: Re: "), 1)
			vs, err = dkim.VerifyWithOptions(bytes.NewReader(tampered), &dkim.VerifyOptions{
				LookupTXT: func(string) ([]string, error) { return []string{tt.record}, nil },
			})
			if err != nil || len(vs) != 1 || vs[0].Err == nil {
				t.Errorf("a tampered message verified: %v, %v", vs, err)
			}
		})
	}
}
