package linktoken_test

import (
	"testing"

	"github.com/paperroute/paperroute/services/subscriber/internal/linktoken"
)

// BenchmarkSign signs one unsubscribe token, as ListDueSubscribers does
// twice per due subscriber.
func BenchmarkSign(b *testing.B) {
	kr := keyring(b, keyB, keyA)
	c := linktoken.Claims{Purpose: linktoken.Unsubscribe, SubscriberID: "01KBA1S9P0Q7M2X4N8C3D5E6F7", IssuedAt: t0, Epoch: 3}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse verifies one such token, as the unsubscribe page does.
func BenchmarkParse(b *testing.B) {
	kr := keyring(b, keyB, keyA)
	c := linktoken.Claims{Purpose: linktoken.Unsubscribe, SubscriberID: "01KBA1S9P0Q7M2X4N8C3D5E6F7", IssuedAt: t0, Epoch: 3}
	tok := sign(b, kr, c)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Parse(tok, t0, linktoken.Unsubscribe); err != nil {
			b.Fatal(err)
		}
	}
}
