package pages

import (
	"strings"
	"testing"
	"time"
)

func TestFormToken(t *testing.T) {
	h := &Handler{formKey: formKey([]byte("secret"))}
	other := &Handler{formKey: formKey([]byte("another secret"))}
	now := time.Date(2026, 6, 12, 9, 0, 0, 0, time.UTC)
	tok := h.newFormToken("subscribe", "", now)

	tests := []struct {
		name    string
		h       *Handler
		tok     string
		purpose string
		binding string
		at      time.Time
		want    bool
	}{
		{"fresh", h, tok, "subscribe", "", now, true},
		{"just before expiry", h, tok, "subscribe", "", now.Add(FormTokenTTL), true},
		{"expired", h, tok, "subscribe", "", now.Add(FormTokenTTL + time.Second), false},
		{"from a clock a little ahead", h, tok, "subscribe", "", now.Add(-formTokenSkew), true},
		{"from the future", h, tok, "subscribe", "", now.Add(-formTokenSkew - time.Second), false},
		{"other purpose", h, tok, "preferences", "", now, false},
		{"other binding", h, tok, "subscribe", "x", now, false},
		{"other key", other, tok, "subscribe", "", now, false},
		{"empty", h, "", "subscribe", "", now, false},
		{"no dot", h, strings.ReplaceAll(tok, ".", ""), "subscribe", "", now, false},
		{"signature changed", h, tok[:len(tok)-1] + "A", "subscribe", "", now, false},
		{"time changed", h, "1" + tok, "subscribe", "", now, false},
		{"leading zero", h, "0" + tok, "subscribe", "", now, false},
		{"huge", h, strings.Repeat("9", 100) + "." + strings.Repeat("A", 10000), "subscribe", "", now, false},
		{"padding", h, tok + "=", "subscribe", "", now, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.h.checkFormToken(tt.tok, tt.purpose, tt.binding, tt.at); got != tt.want {
				t.Errorf("checkFormToken(%q) = %v, want %v", tt.tok, got, tt.want)
			}
		})
	}
	// The purpose and binding cannot be shifted into each other.
	if h.checkFormToken(h.newFormToken("ab", "c", now), "a", "bc", now) {
		t.Error("(ab, c) and (a, bc) share a token")
	}
}

func TestFormKeyWithoutSecret(t *testing.T) {
	a, b := formKey(nil), formKey(nil)
	if len(a) != 32 || string(a) == string(b) {
		t.Error("without a secret each process needs its own random key")
	}
}

func TestTimezoneList(t *testing.T) {
	zones := timezones()
	if len(zones) < 300 {
		t.Fatalf("%d zones", len(zones))
	}
	for _, z := range zones {
		if _, err := time.LoadLocation(z); err != nil {
			t.Errorf("%s does not load: %v", z, err)
		}
	}
	for _, want := range []string{"UTC", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York"} {
		found := false
		for _, z := range zones {
			found = found || z == want
		}
		if !found {
			t.Errorf("the list lacks %s", want)
		}
	}
	if c := timezoneChoices("Asia/Calcutta"); c[0] != (tzChoice{Name: "Asia/Calcutta", Selected: true}) {
		t.Errorf("a zone the list lacks is not added first and chosen: %v", c[0])
	}
	if c := timezoneChoices(strings.Repeat("x", 100)); len(c) != len(zones) {
		t.Error("an overlong zone name is echoed as an option")
	}
}
