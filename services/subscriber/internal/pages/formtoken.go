package pages

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// Form tokens are the second of the two CSRF defences of the form pages
// (/subscribe and /preferences); the first is net/http's
// CrossOriginProtection, which refuses a POST a browser marks as coming from
// another site (Sec-Fetch-Site, or Origin against Host).
//
// A form token is "<unix seconds>.<base64url HMAC-SHA256>" over the form's
// purpose, the time the form was served and what the form acts on (the
// manage token for /preferences): a POST must carry a token of a form this
// service served for that purpose within FormTokenTTL. It needs no cookie,
// so the subscribe form keeps working inside a cross-site <iframe>, where
// browsers withhold cookies. A refused token never loses the reader's
// input: the form comes back filled in, with a fresh token, asking them to
// press the button again.

// FormTokenTTL is how long a served form can be submitted.
const FormTokenTTL = 2 * time.Hour

// formTokenSkew tolerates a token from a replica whose clock is ahead.
const formTokenSkew = time.Minute

// formKeyLabel separates the form key from any other use of the secret it is
// derived from.
const formKeyLabel = "paperroute pages form token v1"

// formKey derives the HMAC key of form tokens from secret; an empty secret
// gives a random key, valid only in this process.
func formKey(secret []byte) []byte {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(formKeyLabel))
	return m.Sum(nil)
}

// newFormToken returns a token for a form of purpose about binding, served
// at now.
func (h *Handler) newFormToken(purpose, binding string, now time.Time) string {
	ts := strconv.FormatInt(now.Unix(), 10)
	return ts + "." + base64.RawURLEncoding.EncodeToString(h.formMAC(purpose, binding, ts))
}

// checkFormToken reports whether tok is a token of a form of purpose about
// binding that may still be submitted at now.
func (h *Handler) checkFormToken(tok, purpose, binding string, now time.Time) bool {
	ts, sig, ok := strings.Cut(tok, ".")
	if !ok || len(ts) > 12 || len(sig) > 64 {
		return false
	}
	issued, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || strconv.FormatInt(issued, 10) != ts {
		return false
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil || !hmac.Equal(got, h.formMAC(purpose, binding, ts)) {
		return false
	}
	at := time.Unix(issued, 0)
	return !at.After(now.Add(formTokenSkew)) && now.Sub(at) <= FormTokenTTL
}

func (h *Handler) formMAC(purpose, binding, ts string) []byte {
	m := hmac.New(sha256.New, h.formKey)
	// Length-prefixed fields: no two different triples sign the same bytes.
	for _, f := range []string{purpose, binding, ts} {
		m.Write([]byte(strconv.Itoa(len(f)) + ":" + f))
	}
	return m.Sum(nil)
}
