package envload_test

import (
	"context"
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

func TestLoadErrorsNameTheVariable(t *testing.T) {
	for name, tt := range map[string]struct {
		env  map[string]string
		want string
	}{
		"missing required": {map[string]string{}, "config: TOKEN: missing required value: TOKEN"},
		"bad duration":     {map[string]string{"TOKEN": "t", "TIMEOUT": "soon"}, `config: TIMEOUT: time: invalid duration "soon"`},
	} {
		t.Run(name, func(t *testing.T) {
			var c cfg
			err := envload.Load(context.Background(), envload.MapGetenv(tt.env, nil), &c)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Load = %v, want %q", err, tt.want)
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

func TestServiceAddressDefaults(t *testing.T) {
	var got struct {
		Sender string `env:"SENDER_GRPC_ADDR"`
		Pages  string `env:"SUBSCRIBER_HTTP_ADDR"`
		Other  string `env:"SOMETHING_ELSE"`
	}
	getenv := envload.MapGetenv(map[string]string{"SUBSCRIBER_HTTP_ADDR": "0.0.0.0:80"}, nil)
	if err := envload.Load(context.Background(), getenv, &got); err != nil {
		t.Fatal(err)
	}
	if got.Sender != "127.0.0.1:50053" || got.Pages != "0.0.0.0:80" || got.Other != "" {
		t.Errorf("Load = %+v; want the sender's default address, the set value kept, no default for other names", got)
	}
}
