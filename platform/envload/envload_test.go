package envload_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/envload"
)

type cfg struct {
	Addr    string        `env:"ADDR, default=127.0.0.1:1"`
	Timeout time.Duration `env:"TIMEOUT, default=5s"`
	Token   string        `env:"TOKEN, required"`
}

func TestLoad(t *testing.T) {
	getenv := envload.MapGetenv(map[string]string{"TOKEN": "t", "TIMEOUT": "2m", "ADDR": ""}, nil)
	var c cfg
	if err := envload.Load(context.Background(), getenv, &c); err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:1" || c.Timeout != 2*time.Minute || c.Token != "t" {
		t.Errorf("Load = %+v", c)
	}
}

func TestLoadErrors(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"missing required": {},
		"bad duration":     {"TOKEN": "t", "TIMEOUT": "soon"},
	} {
		t.Run(name, func(t *testing.T) {
			var c cfg
			err := envload.Load(context.Background(), envload.MapGetenv(env, nil), &c)
			if err == nil || !strings.HasPrefix(err.Error(), "config: ") {
				t.Errorf("Load = %v, want a config error", err)
			}
		})
	}
}

func TestMapGetenvFallback(t *testing.T) {
	getenv := envload.MapGetenv(map[string]string{"A": "1"}, func(k string) string { return "fb-" + k })
	if got := getenv("A"); got != "1" {
		t.Errorf("A = %q", got)
	}
	if got := getenv("B"); got != "fb-B" {
		t.Errorf("B = %q", got)
	}
}
