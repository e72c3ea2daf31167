package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/envload"
)

func TestRunCommands(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantErr    string // "" means success
		wantOutput string
	}{
		{name: "no command", args: nil, wantErr: "no command given", wantOutput: "usage:"},
		{name: "unknown command", args: []string{"serve"}, wantErr: `unknown command "serve"`, wantOutput: "usage:"},
		{name: "help", args: []string{"help"}, wantOutput: "paperroute dev"},
		{name: "bad dev flag", args: []string{"dev", "-bogus"}, wantErr: "flag provided but not defined", wantOutput: "-var"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var out bytes.Buffer
			err := run(ctx, tt.args, envload.MapGetenv(tt.env, nil), &out, &out)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("run(%q) = %v, want success", tt.args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("run(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
			if !strings.Contains(out.String(), tt.wantOutput) {
				t.Errorf("output %q lacks %q", out.String(), tt.wantOutput)
			}
		})
	}
}

// paperroute all without configuration fails naming what is missing, and
// releases every port it bound for the three services.
func TestAllWithoutConfiguration(t *testing.T) {
	names := []string{"SUBSCRIBER_GRPC_ADDR", "SUBSCRIBER_HTTP_ADDR", "DIGEST_GRPC_ADDR", "DIGEST_HTTP_ADDR", "SENDER_GRPC_ADDR", "SENDER_HTTP_ADDR"}
	env := map[string]string{}
	for _, n := range names {
		env[n] = freeAddr(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"all"}, envload.MapGetenv(env, nil), &out, &out)
	if err == nil || !strings.Contains(err.Error(), "PAPERROUTE_ADMIN_TOKEN") {
		t.Fatalf("run(all) = %v, want an error naming PAPERROUTE_ADMIN_TOKEN", err)
	}
	for _, n := range names {
		l, err := net.Listen("tcp", env[n])
		if err != nil {
			t.Errorf("%s=%s still bound after paperroute all failed: %v", n, env[n], err)
			continue
		}
		l.Close()
	}
}
