package smtpmail

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/emersion/go-msgauth/dkim"
)

// DKIMHeaders are the header fields every signature covers (RFC 8058 asks
// for List-Unsubscribe and List-Unsubscribe-Post to be signed). A listed
// field a message lacks is signed as absent, so it cannot be added later.
func DKIMHeaders() []string {
	return []string{"From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"}
}

// DKIM signs messages (RFC 6376) with github.com/emersion/go-msgauth:
// relaxed/relaxed canonicalization, SHA-256, RSA or Ed25519.
type DKIM struct {
	// Domain (d=) and Selector (s=): the public key is published at
	// <Selector>._domainkey.<Domain>.
	Domain   string
	Selector string
	// Signer is the private key (*rsa.PrivateKey or ed25519.PrivateKey).
	Signer crypto.Signer
}

// sign writes msg with a DKIM-Signature header in front into dst.
func (d *DKIM) sign(dst *bytes.Buffer, msg []byte) error {
	err := dkim.Sign(dst, bytes.NewReader(msg), &dkim.SignOptions{
		Domain:                 d.Domain,
		Selector:               d.Selector,
		Signer:                 d.Signer,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             DKIMHeaders(),
	})
	if err != nil {
		return fmt.Errorf("smtpmail: dkim sign: %w", err)
	}
	return nil
}

// ParseDKIMKey parses a PEM private key: PKCS#8 (RSA or Ed25519) or
// PKCS#1 RSA.
func ParseDKIMKey(pemBytes []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("smtpmail: dkim key: no PEM block")
	}
	if key, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, errors.New("smtpmail: dkim key: not a signing key")
		}
		return signer, nil
	}
	key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("smtpmail: dkim key: want a PKCS#8 RSA or Ed25519 key, or a PKCS#1 RSA key: %w", err)
	}
	return key, nil
}
