package linktoken_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/services/subscriber/internal/linktoken"
)

var (
	keyA = linktoken.Key{ID: "a", Secret: bytes.Repeat([]byte{0xA1}, 32)}
	keyB = linktoken.Key{ID: "b2026", Secret: bytes.Repeat([]byte{0xB2}, 48)}
	t0   = time.Date(2026, 6, 12, 9, 30, 0, 0, time.UTC)
)

func keyring(t testing.TB, keys ...linktoken.Key) *linktoken.Keyring {
	t.Helper()
	kr, err := linktoken.NewKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func sign(t testing.TB, kr *linktoken.Keyring, c linktoken.Claims) string {
	t.Helper()
	tok, err := kr.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRoundTrip(t *testing.T) {
	kr := keyring(t, keyA)
	tests := []struct {
		name   string
		claims linktoken.Claims
	}{
		{"confirm with expiry", linktoken.Claims{Purpose: linktoken.Confirm, SubscriberID: "01J0ZZZZZZZZZZZZZZZZZZZZZZ", IssuedAt: t0, Expiry: t0.Add(168 * time.Hour), Epoch: 0}},
		{"unsubscribe never expires", linktoken.Claims{Purpose: linktoken.Unsubscribe, SubscriberID: "01J0ZZZZZZZZZZZZZZZZZZZZZZ", IssuedAt: t0, Epoch: 7}},
		{"manage with large epoch", linktoken.Claims{Purpose: linktoken.Manage, SubscriberID: "x", IssuedAt: t0, Epoch: 1 << 63}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := sign(t, kr, tt.claims)
			if url.QueryEscape(tok) != tok {
				t.Errorf("token %q is not URL-safe", tok)
			}
			got, err := kr.Parse(tok, t0.Add(time.Hour), tt.claims.Purpose)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.claims, got); diff != "" {
				t.Errorf("claims mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	kr := keyring(t, keyA)
	confirm := sign(t, kr, linktoken.Claims{Purpose: linktoken.Confirm, SubscriberID: "S1", IssuedAt: t0, Expiry: t0.Add(time.Hour)})
	unsub := sign(t, kr, linktoken.Claims{Purpose: linktoken.Unsubscribe, SubscriberID: "S1", IssuedAt: t0})
	parts := strings.Split(confirm, ".")
	forgedByOther := sign(t, keyring(t, linktoken.Key{ID: "a", Secret: bytes.Repeat([]byte{0x99}, 32)}), linktoken.Claims{Purpose: linktoken.Confirm, SubscriberID: "S1", IssuedAt: t0, Expiry: t0.Add(time.Hour)})
	otherPayload := strings.Split(sign(t, kr, linktoken.Claims{Purpose: linktoken.Confirm, SubscriberID: "S2", IssuedAt: t0, Expiry: t0.Add(time.Hour)}), ".")[1]
	flipped := []byte(parts[2])
	flipped[3] ^= 1

	tests := []struct {
		name     string
		token    string
		now      time.Time
		purposes []linktoken.Purpose
		want     error
	}{
		{"empty", "", t0, []linktoken.Purpose{linktoken.Confirm}, linktoken.ErrMalformed},
		{"garbage", "not a token", t0, []linktoken.Purpose{linktoken.Confirm}, linktoken.ErrMalformed},
		{"only dots", "..", t0, []linktoken.Purpose{linktoken.Confirm}, linktoken.ErrMalformed},
		{"four parts", confirm + ".x", t0, []linktoken.Purpose{linktoken.Confirm}, linktoken.ErrMalformed},
		{"truncated mac", confirm[:len(confirm)-5], t0, []linktoken.Purpose{linktoken.Confirm}, linktoken.ErrMalformed},
		{"truncated to two parts", parts[0] + "." + parts[1], t0, []linktoken.Purpose{linktoken.Confirm}, linktoken.ErrMalformed},
		{"oversized 100 KB", strings.Repeat("A", 100<<10), t0, []linktoken.Purpose{linktoken.Confirm}, linktoken.ErrMalformed},
		{"oversized with valid prefix", confirm + strings.Repeat("A", 1000), t0, []linktoken.Purpose{linktoken.Confirm}, linktoken.ErrMalformed},
		{"padded base64 mac", confirm + "=", t0, []linktoken.Purpose{linktoken.Confirm}, linktoken.ErrMalformed},
		{"bad kid characters", "a/b." + parts[1] + "." + parts[2], t0, []linktoken.Purpose{linktoken.Confirm}, linktoken.ErrMalformed},
		{"unknown kid", "zz." + parts[1] + "." + parts[2], t0, []linktoken.Purpose{linktoken.Confirm}, linktoken.ErrBadSignature},
		{"forged with another secret", forgedByOther, t0, []linktoken.Purpose{linktoken.Confirm}, linktoken.ErrBadSignature},
		{"flipped mac bit", parts[0] + "." + parts[1] + "." + string(flipped), t0, []linktoken.Purpose{linktoken.Confirm}, linktoken.ErrBadSignature},
		{"swapped payload", parts[0] + "." + otherPayload + "." + parts[2], t0, []linktoken.Purpose{linktoken.Confirm}, linktoken.ErrBadSignature},
		{"expired", confirm, t0.Add(time.Hour), []linktoken.Purpose{linktoken.Confirm}, linktoken.ErrExpired},
		{"long expired", confirm, t0.Add(1000 * time.Hour), []linktoken.Purpose{linktoken.Confirm}, linktoken.ErrExpired},
		{"unsubscribe token used to confirm", unsub, t0, []linktoken.Purpose{linktoken.Confirm}, linktoken.ErrWrongPurpose},
		{"confirm token used to unsubscribe", confirm, t0, []linktoken.Purpose{linktoken.Unsubscribe, linktoken.Manage}, linktoken.ErrWrongPurpose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := kr.Parse(tt.token, tt.now, tt.purposes...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse = %+v, %v; want error %v", got, err, tt.want)
			}
			if got != (linktoken.Claims{}) {
				t.Errorf("Parse returned claims %+v with an error", got)
			}
		})
	}
}

// TestSignedGarbagePayload checks that a correctly MACed payload that is not
// a valid encoding (as a leaked key could make) is still refused cleanly.
func TestSignedGarbagePayload(t *testing.T) {
	kr := keyring(t, keyA)
	for _, payload := range [][]byte{
		{}, {1}, {2, 1, 0, 0, 0, 'x'}, {1, 9, 0, 0, 0, 'x'}, {1, 1, 0, 0, 0},
		{1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		append([]byte{1, 1, 0, 0, 0}, bytes.Repeat([]byte("x"), 65)...),
	} {
		p := base64.RawURLEncoding.EncodeToString(payload)
		if p == "" {
			p = "A"
		}
		tok := signRaw(keyA, p)
		if _, err := kr.Parse(tok, t0, linktoken.Confirm); !errors.Is(err, linktoken.ErrMalformed) {
			t.Errorf("payload %x: err = %v, want ErrMalformed", payload, err)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	old := keyring(t, keyA)
	rotated := keyring(t, keyB, keyA) // B signs, A still verifies
	retired := keyring(t, keyB)       // A removed

	claims := linktoken.Claims{Purpose: linktoken.Unsubscribe, SubscriberID: "S1", IssuedAt: t0}
	oldTok := sign(t, old, claims)
	newTok := sign(t, rotated, claims)

	if !strings.HasPrefix(newTok, "b2026.") {
		t.Errorf("rotated keyring signed %q, want the first key b2026", newTok)
	}
	if _, err := rotated.Parse(oldTok, t0, linktoken.Unsubscribe); err != nil {
		t.Errorf("old token under rotated keyring: %v, want success", err)
	}
	if _, err := rotated.Parse(newTok, t0, linktoken.Unsubscribe); err != nil {
		t.Errorf("new token under rotated keyring: %v, want success", err)
	}
	if _, err := old.Parse(newTok, t0, linktoken.Unsubscribe); !errors.Is(err, linktoken.ErrBadSignature) {
		t.Errorf("new token under old keyring: %v, want ErrBadSignature (unknown kid)", err)
	}
	if _, err := retired.Parse(oldTok, t0, linktoken.Unsubscribe); !errors.Is(err, linktoken.ErrBadSignature) {
		t.Errorf("old token after retiring its key: %v, want ErrBadSignature", err)
	}
}

func TestNewKeyringRejects(t *testing.T) {
	tests := []struct {
		name string
		keys []linktoken.Key
	}{
		{"no keys", nil},
		{"short key", []linktoken.Key{{ID: "a", Secret: make([]byte, 31)}}},
		{"empty id", []linktoken.Key{{ID: "", Secret: make([]byte, 32)}}},
		{"id with dot", []linktoken.Key{{ID: "a.b", Secret: make([]byte, 32)}}},
		{"id too long", []linktoken.Key{{ID: strings.Repeat("k", 17), Secret: make([]byte, 32)}}},
		{"duplicate id", []linktoken.Key{keyA, {ID: "a", Secret: make([]byte, 32)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := linktoken.NewKeyring(tt.keys); err == nil {
				t.Error("NewKeyring succeeded, want an error")
			}
		})
	}
}

func TestParseKeys(t *testing.T) {
	std := base64.StdEncoding.EncodeToString(keyA.Secret)
	raw := base64.RawURLEncoding.EncodeToString(keyB.Secret)
	got, err := linktoken.ParseKeys("a:" + std + " , b2026:" + raw)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]linktoken.Key{keyA, keyB}, got); diff != "" {
		t.Errorf("ParseKeys mismatch (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "a", "a:", ":" + std, "a:not*base64", "a:" + std + ","} {
		if _, err := linktoken.ParseKeys(bad); err == nil {
			t.Errorf("ParseKeys(%q) succeeded, want an error", bad)
		}
	}
}

func TestSignRejects(t *testing.T) {
	kr := keyring(t, keyA)
	for name, c := range map[string]linktoken.Claims{
		"no purpose":      {SubscriberID: "S", IssuedAt: t0},
		"no subscriber":   {Purpose: linktoken.Confirm, IssuedAt: t0},
		"long subscriber": {Purpose: linktoken.Confirm, SubscriberID: strings.Repeat("s", 65), IssuedAt: t0},
		"before 1970":     {Purpose: linktoken.Confirm, SubscriberID: "S", IssuedAt: time.Unix(-1, 0)},
	} {
		if tok, err := kr.Sign(c); err == nil {
			t.Errorf("%s: Sign = %q, want an error", name, tok)
		}
	}
}

// FuzzParse feeds arbitrary strings to Parse: it must never panic, must
// reject everything it did not sign, and must only ever return claims
// together with a nil error. The seed corpus is in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	kr := keyring(f, keyA, keyB)
	good := sign(f, kr, linktoken.Claims{Purpose: linktoken.Confirm, SubscriberID: "01J0ZZZZZZZZZZZZZZZZZZZZZZ", IssuedAt: t0, Expiry: t0.Add(time.Hour)})
	for _, s := range []string{good, "", ".", "..", "a..", "a.AQE.", good[:len(good)-1], good + "A", "b2026." + good[2:]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := kr.Parse(tok, t0, linktoken.Confirm, linktoken.Unsubscribe, linktoken.Manage)
		if err != nil {
			if c != (linktoken.Claims{}) {
				t.Fatalf("claims %+v returned with error %v", c, err)
			}
			for _, known := range []error{linktoken.ErrMalformed, linktoken.ErrBadSignature, linktoken.ErrExpired, linktoken.ErrWrongPurpose} {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("Parse(%q) = unexpected error %v", tok, err)
		}
		// Accepted: it must be a token this keyring signed, i.e. re-signing
		// the claims with the same key reproduces a valid token.
		again := sign(t, kr, c)
		if _, err := kr.Parse(again, t0, c.Purpose); err != nil {
			t.Fatalf("re-signed claims of accepted token %q do not verify: %v", tok, err)
		}
	})
}

func signRaw(k linktoken.Key, payloadB64 string) string {
	return linktoken.SignRawForTest(k, payloadB64)
}
