package auth_test

import (
	"context"
	"testing"

	"github.com/paperroute/paperroute/platform/auth"
)

func TestNewAuthorizerNeedsTwoDistinctTokens(t *testing.T) {
	for name, tokens := range map[string]auth.Tokens{
		"no admin":   {Service: "s"},
		"no service": {Admin: "a"},
		"same token": {Admin: "x", Service: "x"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := auth.NewAuthorizer(auth.Policy{}, tokens); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestBearerTokenMetadata(t *testing.T) {
	md, err := auth.BearerToken{Token: "t0k"}.GetRequestMetadata(context.Background())
	if err != nil || md["authorization"] != "Bearer t0k" {
		t.Errorf("metadata = %v, %v", md, err)
	}
	if !(auth.BearerToken{}).RequireTransportSecurity() {
		t.Error("a bearer token must require transport security unless AllowInsecure is set")
	}
	if (auth.BearerToken{AllowInsecure: true}).RequireTransportSecurity() {
		t.Error("AllowInsecure ignored")
	}
}
