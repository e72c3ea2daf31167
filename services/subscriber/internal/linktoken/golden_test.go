package linktoken_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/services/subscriber/internal/linktoken"
)

// TestGoldenTokens pins the token format: these tokens were made by Sign
// before its implementation was reworked for speed (2026-11-30). Links in
// mails already sent carry tokens like them, so Parse must keep accepting
// them and Sign must keep making exactly them.
func TestGoldenTokens(t *testing.T) {
	kr := keyring(t, keyB, keyA)
	old := keyring(t, keyA)
	tests := []struct {
		name   string
		kr     *linktoken.Keyring
		claims linktoken.Claims
		token  string
	}{
		{"unsubscribe", kr,
			linktoken.Claims{Purpose: linktoken.Unsubscribe, SubscriberID: "01J0ZZZZZZZZZZZZZZZZZZZZZZ", IssuedAt: t0, Epoch: 0},
			"b2026.AQKYo6_RBgAAMDFKMFpaWlpaWlpaWlpaWlpaWlpaWlpaWlo.amzdJOPBkZuP2EByePvJ98EHs_WVN9vRme_H3mlFOIc"},
		{"manage with epoch", kr,
			linktoken.Claims{Purpose: linktoken.Manage, SubscriberID: "01KBA1S9P0Q7M2X4N8C3D5E6F7", IssuedAt: t0.Add(90 * 24 * time.Hour), Epoch: 300},
			"b2026.AQOY8YnVBgCsAjAxS0JBMVM5UDBRN00yWDROOEMzRDVFNkY3.aYTNTAVPJn9GYQtKNz02aMCdwN2vOUUNgeZ7HDHMT_w"},
		{"confirm with expiry", kr,
			linktoken.Claims{Purpose: linktoken.Confirm, SubscriberID: "01J0ZZZZZZZZZZZZZZZZZZZZZZ", IssuedAt: t0, Expiry: t0.Add(168 * time.Hour), Epoch: 2},
			"b2026.AQGYo6_RBpiY1NEGAjAxSjBaWlpaWlpaWlpaWlpaWlpaWlpaWlpa.Ge7VmB1HjhK4UYwlwjLhCWyJYz2pbA9g4EAPieLdYsg"},
		{"signed with the second key", old,
			linktoken.Claims{Purpose: linktoken.Unsubscribe, SubscriberID: "01J0ZZZZZZZZZZZZZZZZZZZZZZ", IssuedAt: t0, Epoch: 1},
			"a.AQKYo6_RBgABMDFKMFpaWlpaWlpaWlpaWlpaWlpaWlpaWlo.FGOM9kwnD4VJZAbEhtg6OMKEHH6WyCU2I8K4fmyMHj0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sign(t, tt.kr, tt.claims); got != tt.token {
				t.Errorf("Sign = %q, want %q", got, tt.token)
			}
			got, err := kr.Parse(tt.token, t0.Add(time.Hour), tt.claims.Purpose)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.token, err)
			}
			if diff := cmp.Diff(tt.claims, got); diff != "" {
				t.Errorf("claims mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestConcurrentSignParse signs and verifies from many goroutines at once:
// the pooled MAC state must never be shared between two of them (run under
// -race), and every token must come out as a single Sign would make it.
func TestConcurrentSignParse(t *testing.T) {
	kr := keyring(t, keyB, keyA)
	want := make([]string, 64)
	claims := make([]linktoken.Claims, len(want))
	for i := range want {
		claims[i] = linktoken.Claims{Purpose: linktoken.Manage, SubscriberID: fmt.Sprintf("01KBA1S9P0Q7M2X4N8C3D5E%03d", i), IssuedAt: t0, Epoch: uint64(i)}
		want[i] = sign(t, keyring(t, keyB), claims[i])
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for round := 0; round < 50; round++ {
				i := (g*7 + round) % len(want)
				tok, err := kr.Sign(claims[i])
				if err == nil && tok != want[i] {
					err = fmt.Errorf("Sign(%d) = %q, want %q", i, tok, want[i])
				}
				if err == nil {
					_, err = kr.Parse(want[(i+1)%len(want)], t0, linktoken.Manage)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
