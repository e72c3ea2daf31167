package main

import (
	"bytes"
	"context"
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
		{name: "bad dev flag", args: []string{"dev", "-bogus"}, wantErr: "flag provided but not defined"},
		{name: "all without configuration", args: []string{"all"}, env: map[string]string{
			"SUBSCRIBER_GRPC_ADDR": "127.0.0.1:0", "SUBSCRIBER_HTTP_ADDR": "127.0.0.1:0",
			"DIGEST_GRPC_ADDR": "127.0.0.1:0", "DIGEST_HTTP_ADDR": "127.0.0.1:0",
			"SENDER_GRPC_ADDR": "127.0.0.1:0", "SENDER_HTTP_ADDR": "127.0.0.1:0",
		}, wantErr: "PAPERROUTE_ADMIN_TOKEN"},
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
