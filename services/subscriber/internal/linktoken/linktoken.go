// Package linktoken signs and verifies the tokens in the links paperroute
// mails: confirm, unsubscribe and manage.
//
// A token is three dot-separated parts, all URL-safe:
//
//	<kid>.<base64url payload>.<base64url HMAC-SHA256>
//
// kid names the key that signed it (so keys can be rotated: the first key of
// a Keyring signs, every key verifies). The MAC covers "<kid>.<payload>", so
// neither part can be swapped. The payload is binary:
//
//	version (1 byte, = 1) | purpose (1 byte) | issued-at (uvarint, Unix s) |
//	expiry (uvarint, Unix s, 0 = never) | epoch (uvarint) | subscriber id (rest)
//
// Confirm tokens expire; unsubscribe and manage tokens do not, so links in
// old mails keep working, but they carry the subscriber's token epoch and
// the service refuses a token whose epoch is not the subscriber's current
// one: bumping the epoch revokes every link issued before.
package linktoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
	"sync"
	"time"
)

// Errors returned by Parse. They are written for the person holding the
// link.
var (
	// ErrMalformed means the input is not a token at all (truncated,
	// mangled, too long).
	ErrMalformed = errors.New("linktoken: the link is incomplete or damaged")
	// ErrBadSignature means the token was not signed by any current key:
	// forged, altered, or signed with a key that has been retired.
	ErrBadSignature = errors.New("linktoken: the link is not valid")
	// ErrExpired means the token was genuine but its time is up.
	ErrExpired = errors.New("linktoken: the link has expired")
	// ErrWrongPurpose means a genuine token was used for something it was
	// not issued for (e.g. an unsubscribe link to confirm).
	ErrWrongPurpose = errors.New("linktoken: the link is not meant for this")
)

// Purpose is what a token may be used for.
type Purpose byte

// The purposes. The values are part of the wire format: never renumber.
const (
	// Confirm confirms a pending subscription (double opt-in).
	Confirm Purpose = 1
	// Unsubscribe unsubscribes (the List-Unsubscribe and footer link).
	Unsubscribe Purpose = 2
	// Manage opens the preferences page; it may also unsubscribe.
	Manage Purpose = 3
)

// String returns the purpose's name.
func (p Purpose) String() string {
	switch p {
	case Confirm:
		return "confirm"
	case Unsubscribe:
		return "unsubscribe"
	case Manage:
		return "manage"
	}
	return fmt.Sprintf("Purpose(%d)", byte(p))
}

// Claims is what a token says.
type Claims struct {
	Purpose Purpose
	// SubscriberID is the subscriber the link belongs to.
	SubscriberID string
	// IssuedAt is when the token was made (second precision).
	IssuedAt time.Time
	// Expiry is when the token stops working; zero means never.
	Expiry time.Time
	// Epoch is the subscriber's token epoch when the token was made.
	Epoch uint64
}

// Limits on what Parse will look at, so hostile input costs nothing.
const (
	// MaxTokenLength bounds a token; real ones are about 110 bytes.
	MaxTokenLength = 512
	// MinKeyLength is the shortest HMAC key accepted, in bytes.
	MinKeyLength = 32
	// MaxKeyIDLength bounds a key id.
	MaxKeyIDLength = 16
	// maxSubscriberIDLength bounds the id inside a token.
	maxSubscriberIDLength = 64

	payloadVersion = 1
	// tokenCap holds any token Sign makes: kid, the base64 of the longest
	// payload, the base64 of the MAC and two dots.
	tokenCap = MaxKeyIDLength + 1 + (2+3*binary.MaxVarintLen64+maxSubscriberIDLength+2)/3*4 + 1 + (sha256.Size+2)/3*4
	// maxUnix bounds the times in a token (year ~36800), so decoding never
	// overflows.
	maxUnix = 1 << 40
)

// Key is one signing key.
type Key struct {
	// ID appears in every token the key signs: 1–16 characters from
	// [A-Za-z0-9_-].
	ID string
	// Secret is the HMAC key, at least MinKeyLength bytes.
	Secret []byte
}

// Keyring signs with its first key and verifies with all of them. It is
// safe for concurrent use.
type Keyring struct {
	signing Key
	byID    map[string]*macer
}

// macer computes HMAC-SHA256 under one key. hmac.New costs a dozen
// allocations and two key-pad compressions; a pooled HMAC whose Reset
// restores the keyed state costs neither (ListDueSubscribers signs two
// links per due subscriber).
type macer struct {
	pool sync.Pool // of hash.Hash, each hmac.New(sha256.New, secret)
}

func newMacer(secret []byte) *macer {
	secret = append([]byte(nil), secret...)
	m := &macer{}
	m.pool.New = func() any { return hmac.New(sha256.New, secret) }
	return m
}

// appendMAC appends the MAC of msg to dst.
func (m *macer) appendMAC(dst, msg []byte) []byte {
	h := m.pool.Get().(hash.Hash)
	h.Reset()
	h.Write(msg)
	dst = h.Sum(dst)
	m.pool.Put(h)
	return dst
}

// NewKeyring returns a Keyring over keys, the first of which signs.
func NewKeyring(keys []Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("linktoken: at least one key is required")
	}
	kr := &Keyring{signing: keys[0], byID: make(map[string]*macer, len(keys))}
	for _, k := range keys {
		if !validKeyID(k.ID) {
			return nil, fmt.Errorf("linktoken: key id %q: want 1-%d characters from A-Z a-z 0-9 _ -", k.ID, MaxKeyIDLength)
		}
		if len(k.Secret) < MinKeyLength {
			return nil, fmt.Errorf("linktoken: key %q: %d bytes, want at least %d", k.ID, len(k.Secret), MinKeyLength)
		}
		if _, dup := kr.byID[k.ID]; dup {
			return nil, fmt.Errorf("linktoken: key id %q appears twice", k.ID)
		}
		kr.byID[k.ID] = newMacer(k.Secret)
	}
	return kr, nil
}

// ParseKeys parses the SUBSCRIBER_TOKEN_KEYS form
// "kid:base64key[,kid:base64key…]" (standard or URL-safe base64, padded or
// not). Whitespace around entries is ignored.
func ParseKeys(s string) ([]Key, error) {
	var keys []Key
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		kid, b64, ok := strings.Cut(entry, ":")
		if !ok || kid == "" || b64 == "" {
			return nil, fmt.Errorf("linktoken: key %d: want kid:base64key", i+1)
		}
		secret, err := decodeAnyBase64(b64)
		if err != nil {
			return nil, fmt.Errorf("linktoken: key %q: not valid base64", kid)
		}
		keys = append(keys, Key{ID: kid, Secret: secret})
	}
	return keys, nil
}

func decodeAnyBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

func validKeyID(id string) bool {
	if id == "" || len(id) > MaxKeyIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Sign returns a token for c, signed with the first key.
func (kr *Keyring) Sign(c Claims) (string, error) {
	b, err := kr.AppendSign(make([]byte, 0, tokenCap), c)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// AppendSign appends the token Sign returns to dst, so a caller can build a
// whole link in one buffer. The token consists of URL-unreserved
// characters only (A-Z a-z 0-9 _ - .): it needs no escaping in a query.
func (kr *Keyring) AppendSign(dst []byte, c Claims) ([]byte, error) {
	switch {
	case c.Purpose != Confirm && c.Purpose != Unsubscribe && c.Purpose != Manage:
		return dst, fmt.Errorf("linktoken: sign: unknown purpose %d", c.Purpose)
	case c.SubscriberID == "" || len(c.SubscriberID) > maxSubscriberIDLength:
		return dst, fmt.Errorf("linktoken: sign: subscriber id must be 1-%d bytes", maxSubscriberIDLength)
	case c.IssuedAt.Unix() < 0 || c.IssuedAt.Unix() > maxUnix ||
		(!c.Expiry.IsZero() && (c.Expiry.Unix() <= 0 || c.Expiry.Unix() > maxUnix)):
		return dst, errors.New("linktoken: sign: time out of range")
	}
	var pbuf [2 + 3*binary.MaxVarintLen64 + maxSubscriberIDLength]byte
	payload := append(pbuf[:0], payloadVersion, byte(c.Purpose))
	payload = binary.AppendUvarint(payload, uint64(c.IssuedAt.Unix()))
	var exp uint64
	if !c.Expiry.IsZero() {
		exp = uint64(c.Expiry.Unix())
	}
	payload = binary.AppendUvarint(payload, exp)
	payload = binary.AppendUvarint(payload, c.Epoch)
	payload = append(payload, c.SubscriberID...)

	// The MAC covers "<kid>.<payload>" as it appears in the token.
	start := len(dst)
	dst = append(dst, kr.signing.ID...)
	dst = append(dst, '.')
	dst = base64.RawURLEncoding.AppendEncode(dst, payload)
	var sum [sha256.Size]byte
	mac := kr.byID[kr.signing.ID].appendMAC(sum[:0], dst[start:])
	dst = append(dst, '.')
	return base64.RawURLEncoding.AppendEncode(dst, mac), nil
}

// Parse verifies token and returns its claims if it is genuine, issued for
// one of the purposes given, and unexpired at now (checked in that order, so
// a link used in the wrong place says so even when it has also expired).
//
// The checks run from cheapest to dearest and nothing of the payload is
// trusted before the MAC is verified (in constant time).
func (kr *Keyring) Parse(token string, now time.Time, purposes ...Purpose) (Claims, error) {
	if len(token) > MaxTokenLength {
		return Claims{}, fmt.Errorf("%w (too long)", ErrMalformed)
	}
	kid, rest, ok1 := strings.Cut(token, ".")
	payloadB64, macB64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || !validKeyID(kid) || payloadB64 == "" || strings.Contains(macB64, ".") {
		return Claims{}, ErrMalformed
	}
	gotMAC, err := base64.RawURLEncoding.Strict().DecodeString(macB64)
	if err != nil || len(gotMAC) != sha256.Size {
		return Claims{}, ErrMalformed
	}
	m, ok := kr.byID[kid]
	if !ok {
		return Claims{}, fmt.Errorf("%w (unknown key)", ErrBadSignature)
	}
	var sum [sha256.Size]byte
	if !hmac.Equal(gotMAC, m.appendMAC(sum[:0], []byte(token[:len(kid)+1+len(payloadB64)]))) {
		return Claims{}, ErrBadSignature
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(payloadB64)
	if err != nil {
		// A MAC over a payload we cannot decode is one we never made.
		return Claims{}, ErrMalformed
	}
	c, err := decodePayload(payload)
	if err != nil {
		return Claims{}, err
	}
	if !slices.Contains(purposes, c.Purpose) {
		return Claims{}, ErrWrongPurpose
	}
	if !c.Expiry.IsZero() && !now.Before(c.Expiry) {
		return Claims{}, ErrExpired
	}
	return c, nil
}

func decodePayload(p []byte) (Claims, error) {
	if len(p) < 2 || p[0] != payloadVersion {
		return Claims{}, ErrMalformed
	}
	c := Claims{Purpose: Purpose(p[1])}
	if c.Purpose != Confirm && c.Purpose != Unsubscribe && c.Purpose != Manage {
		return Claims{}, ErrMalformed
	}
	p = p[2:]
	var fields [3]uint64
	for i := range fields {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return Claims{}, ErrMalformed
		}
		fields[i], p = v, p[n:]
	}
	if fields[0] > maxUnix || fields[1] > maxUnix || len(p) == 0 || len(p) > maxSubscriberIDLength {
		return Claims{}, ErrMalformed
	}
	c.IssuedAt = time.Unix(int64(fields[0]), 0).UTC()
	if fields[1] != 0 {
		c.Expiry = time.Unix(int64(fields[1]), 0).UTC()
	}
	c.Epoch = fields[2]
	c.SubscriberID = string(p)
	return c, nil
}
