// Package envload fills a configuration struct from environment variables
// with github.com/sethvargo/go-envconfig, reading them through a getenv
// function so that tests and the all-in-one binary can supply their own.
package envload

import (
	"context"
	"fmt"

	"github.com/sethvargo/go-envconfig"
)

// Load fills target (a pointer to a struct with `env:"NAME,default=…"` tags)
// from getenv. An empty variable counts as unset, so its default applies.
func Load(ctx context.Context, getenv func(string) string, target any) error {
	lookup := envconfig.LookuperFunc(func(key string) (string, bool) {
		v := getenv(key)
		return v, v != ""
	})
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: target, Lookuper: lookup}); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// MapGetenv returns a getenv function over m, falling back to fallback (which
// may be nil) for keys m does not hold.
func MapGetenv(m map[string]string, fallback func(string) string) func(string) string {
	return func(key string) string {
		if v, ok := m[key]; ok {
			return v
		}
		if fallback != nil {
			return fallback(key)
		}
		return ""
	}
}
