package redisclient_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/platform/redisclient"
	"github.com/paperroute/paperroute/platform/redistest"
	"github.com/paperroute/paperroute/platform/tlsconfig"
	"github.com/paperroute/paperroute/platform/tlsconfig/tlstest"
)

func redisTLS(t *testing.T, env map[string]string) *tlsconfig.Env {
	t.Helper()
	e, err := tlsconfig.Load(context.Background(), envload.MapGetenv(env, nil))
	if err != nil {
		t.Fatal(err)
	}
	return &e
}

func TestOpenRediss(t *testing.T) {
	ca := tlstest.NewCA(t, "redis-ca")
	client := ca.Issue(t, "sender")
	other := tlstest.NewCA(t, "other")
	srvPair := ca.Issue(t, "redis")
	serverOnly := redistest.Start(t, redistest.WithTLS(srvPair.CertFile, srvPair.KeyFile, ca.CertFile, false)).TLSURL()
	mutual := redistest.Start(t, redistest.WithTLS(srvPair.CertFile, srvPair.KeyFile, ca.CertFile, true)).TLSURL()

	for _, tt := range []struct {
		name    string
		url     string
		env     map[string]string
		wantErr string
	}{
		{"server verified with REDIS_TLS_CA", serverOnly, map[string]string{"REDIS_TLS_CA": ca.CertFile}, ""},
		{"system roots do not know the test CA", serverOnly, nil, "certificate"},
		{"wrong CA", serverOnly, map[string]string{"REDIS_TLS_CA": other.CertFile}, "certificate"},
		{"client certificate for tls-auth-clients yes", mutual, map[string]string{"REDIS_TLS_CA": ca.CertFile,
			"REDIS_TLS_CERT": client.CertFile, "REDIS_TLS_KEY": client.KeyFile}, ""},
		{"no client certificate for tls-auth-clients yes", mutual, map[string]string{"REDIS_TLS_CA": ca.CertFile}, "certificate required"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := redisTLS(t, tt.env).Redis()
			if err != nil {
				t.Fatal(err)
			}
			url := tt.url + "/0"
			c, err := redisclient.Open(context.Background(), url, redisclient.WithTLS(cfg))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Open(%s) = %v", url, err)
				}
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := c.Set(ctx, "tls:k", "v", 0).Err(); err != nil {
					t.Fatalf("SET over TLS: %v", err)
				}
				if got, err := c.Get(ctx, "tls:k").Result(); err != nil || got != "v" {
					t.Fatalf("GET over TLS = %q, %v", got, err)
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatalf("Open(%s) succeeded, want an error containing %q", url, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Open(%s) = %v, want it to contain %q", url, err, tt.wantErr)
			}
		})
	}
}

func TestTLSSettingsNeedRediss(t *testing.T) {
	ca := tlstest.NewCA(t, "redis-ca")
	cfg, err := redisTLS(t, map[string]string{"REDIS_TLS_CA": ca.CertFile}).Redis()
	if err != nil {
		t.Fatal(err)
	}
	_, err = redisclient.New("redis://127.0.0.1:6390/0", redisclient.WithTLS(cfg))
	if err == nil || !strings.Contains(err.Error(), "not rediss://") {
		t.Errorf("New(redis://…, WithTLS) = %v, want an error saying the URL is not rediss://", err)
	}
}
