// Package envload fills a configuration struct from environment variables
// with github.com/sethvargo/go-envconfig, reading them through a getenv
// function so that tests and the all-in-one binary can supply their own.
package envload

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"github.com/sethvargo/go-envconfig"
)

// DefaultAddr is the default of a service address variable, "" for any
// other name. The three services listen on, and call each other at, these
// loopback addresses when nothing is configured, so they run side by side
// on one machine; they are kept here once, for the services' configurations
// and for the all-in-one binary that binds them all.
func DefaultAddr(name string) string {
	switch name {
	case "SUBSCRIBER_GRPC_ADDR":
		return "127.0.0.1:50051"
	case "SUBSCRIBER_HTTP_ADDR":
		return "127.0.0.1:8081"
	case "DIGEST_GRPC_ADDR":
		return "127.0.0.1:50052"
	case "DIGEST_HTTP_ADDR":
		return "127.0.0.1:8082"
	case "SENDER_GRPC_ADDR":
		return "127.0.0.1:50053"
	case "SENDER_HTTP_ADDR":
		return "127.0.0.1:8083"
	}
	return ""
}

// Load fills target (a pointer to a struct with `env:"NAME,default=…"` tags)
// from getenv. An empty variable counts as unset, so its default applies;
// the service address variables default to DefaultAddr.
// Errors name the environment variable an operator has to fix, not the Go
// field ("config: SHUTDOWN_GRACE: time: invalid duration \"soon\"").
func Load(ctx context.Context, getenv func(string) string, target any) error {
	lookup := envconfig.LookuperFunc(func(key string) (string, bool) {
		v := getenv(key)
		if v == "" {
			v = DefaultAddr(key)
		}
		return v, v != ""
	})
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: target, Lookuper: lookup}); err != nil {
		return fmt.Errorf("config: %s", nameVariable(err.Error(), target))
	}
	return nil
}

// nameVariable replaces a leading Go field name in go-envconfig's message
// with the field's variable name.
func nameVariable(msg string, target any) string {
	t := reflect.TypeOf(target)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return msg
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		if rest, ok := strings.CutPrefix(msg, f.Name+": "); ok && name != "" {
			return strings.TrimSpace(name) + ": " + rest
		}
	}
	return msg
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
