package digestd_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/envload"
	"github.com/paperroute/paperroute/platform/logging"

	"github.com/paperroute/paperroute/services/digest/digestd"
)

func TestAuth(t *testing.T) {
	s := start(t, nil)
	ctx := context.Background()
	calls := map[string]func(digestv1.DigestServiceClient) error{
		"ImportPapers": func(c digestv1.DigestServiceClient) error {
			_, err := c.ImportPapers(ctx, &digestv1.ImportPapersRequest{})
			return err
		},
		"ListPapers": func(c digestv1.DigestServiceClient) error {
			_, err := c.ListPapers(ctx, &digestv1.ListPapersRequest{})
			return err
		},
		"UpsertPapers": func(c digestv1.DigestServiceClient) error {
			_, err := c.UpsertPapers(ctx, &digestv1.UpsertPapersRequest{})
			return err
		},
		"GetPaper": func(c digestv1.DigestServiceClient) error {
			_, err := c.GetPaper(ctx, &digestv1.GetPaperRequest{})
			return err
		},
		"DeletePaper": func(c digestv1.DigestServiceClient) error {
			_, err := c.DeletePaper(ctx, &digestv1.DeletePaperRequest{})
			return err
		},
		"RunDigest": func(c digestv1.DigestServiceClient) error {
			_, err := c.RunDigest(ctx, &digestv1.RunDigestRequest{Edition: "bad"})
			return err
		},
		"GetDigestRun": func(c digestv1.DigestServiceClient) error {
			_, err := c.GetDigestRun(ctx, &digestv1.GetDigestRunRequest{})
			return err
		},
		"ListDigestRuns": func(c digestv1.DigestServiceClient) error {
			_, err := c.ListDigestRuns(ctx, &digestv1.ListDigestRunsRequest{})
			return err
		},
		// A preview of one subscriber's digest is for operators only.
		"PreviewDigest": func(c digestv1.DigestServiceClient) error {
			_, err := c.PreviewDigest(ctx, &digestv1.PreviewDigestRequest{SubscriberId: "01J0000000000000000000000"})
			return err
		},
	}
	public := map[string]func(digestv1.DigestServiceClient) error{
		"PreviewDigest": func(c digestv1.DigestServiceClient) error {
			_, err := c.PreviewDigest(ctx, &digestv1.PreviewDigestRequest{Preferences: &subscriberv1.Preferences{Topics: []string{"diffusion"}}})
			return err
		},
		"ListTrending": func(c digestv1.DigestServiceClient) error {
			_, err := c.ListTrending(ctx, &digestv1.ListTrendingRequest{})
			return err
		},
		"ListTopics": func(c digestv1.DigestServiceClient) error {
			_, err := c.ListTopics(ctx, &digestv1.ListTopicsRequest{})
			return err
		},
	}
	for _, m := range digestv1.DigestService_ServiceDesc.Methods {
		_, op := calls[m.MethodName]
		_, pub := public[m.MethodName]
		if !op && !pub {
			t.Errorf("method %s has no auth test", m.MethodName)
		}
	}
	for name, call := range public {
		for _, token := range []string{"", "not-the-token", serviceToken} {
			t.Run(name+" is public, token "+token, func(t *testing.T) {
				if code := status.Code(call(digestv1.NewDigestServiceClient(dial(t, s.addr, token)))); code == codes.Unauthenticated || code == codes.PermissionDenied {
					t.Errorf("public call refused: %v", code)
				}
			})
		}
	}
	clients := []struct {
		name  string
		token string
		want  codes.Code
	}{
		{"no token", "", codes.Unauthenticated},
		{"wrong token", "not-the-token", codes.Unauthenticated},
		{"service token", serviceToken, codes.PermissionDenied},
	}
	for name, call := range calls {
		for _, c := range clients {
			t.Run(name+" with "+c.name, func(t *testing.T) {
				want := c.want
				if name == "PreviewDigest" {
					// PUBLIC at the door; the handler refuses a subscriber
					// id without the operator token.
					want = codes.PermissionDenied
				}
				err := call(digestv1.NewDigestServiceClient(dial(t, s.addr, c.token)))
				wantCode(t, err, want, "")
			})
		}
		t.Run(name+" with the admin token", func(t *testing.T) {
			if code := status.Code(call(s.client)); code == codes.Unauthenticated || code == codes.PermissionDenied {
				t.Errorf("admin call refused: %v", code)
			}
		})
	}
	if keys := s.digKeys(t); len(keys) != 0 {
		t.Errorf("refused calls stored keys %v", keys)
	}
}

func TestHTTP(t *testing.T) {
	s := start(t, nil)
	for path, want := range map[string]string{"/healthz": "ok", "/metrics": "grpc_server_handled_total"} {
		resp, err := http.Get(s.httpURL + path)
		if err != nil {
			t.Fatal(err)
		}
		body := new(strings.Builder)
		_, _ = fmt.Fprint(body, readAll(t, resp))
		if resp.StatusCode != http.StatusOK || !strings.Contains(body.String(), want) {
			t.Errorf("GET %s = %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
	s.redis.Kill()
	resp, err := http.Get(s.httpURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /healthz with Redis down = %d, want 503", resp.StatusCode)
	}
	s.redis.Restart()
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

func TestRunFailsFast(t *testing.T) {
	base := map[string]string{
		"PAPERROUTE_ADMIN_TOKEN":   adminToken,
		"PAPERROUTE_SERVICE_TOKEN": serviceToken,
		"DIGEST_POSTAL_ADDRESS":    "Example Ltd, 1 Road, Town",
		"DIGEST_SOURCES":           "off", // no test reaches the internet
	}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unreachable redis", map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0?dial_timeout=200ms"}, "redis"},
		{"bad redis URL", map[string]string{"REDIS_URL": "http://example.com"}, "unsupported scheme"},
		{"missing token", map[string]string{"PAPERROUTE_ADMIN_TOKEN": ""}, "PAPERROUTE_ADMIN_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			grpcLis, httpLis := listen(t), listen(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := digestd.Run(ctx, envload.MapGetenv(env, nil), digestd.Deps{Logger: logging.Discard(), GRPCListener: grpcLis, HTTPListener: httpLis})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %v, want an error containing %q", err, tt.want)
			}
			if ctx.Err() != nil {
				t.Error("Run did not fail fast")
			}
			if _, err := net.Dial("tcp", grpcLis.Addr().String()); err == nil {
				t.Error("Run left the gRPC listener open after failing")
			}
		})
	}
}

func TestPublicRPCs(t *testing.T) {
	s := start(t, nil)
	ctx := context.Background()
	public := digestv1.NewDigestServiceClient(dial(t, s.addr, ""))

	topics, err := public.ListTopics(ctx, &digestv1.ListTopicsRequest{})
	if err != nil || len(topics.GetTopics()) != 16 || topics.GetTopics()[3].GetId() != "diffusion" || topics.GetTopics()[3].GetLabel() != "Diffusion models" {
		t.Errorf("ListTopics = %v, %v; want the 16 shipped topics", topics, err)
	}
	// The fixture is from June; today's 72-hour window is empty.
	s.importFixture(t)
	if tr, err := public.ListTrending(ctx, &digestv1.ListTrendingRequest{}); err != nil || len(tr.GetPapers()) != 0 {
		t.Errorf("ListTrending = %v, %v; want no papers in today's window", tr, err)
	}
	_, err = public.ListTrending(ctx, &digestv1.ListTrendingRequest{Window: durationpb.New(-time.Hour)})
	wantCode(t, err, codes.InvalidArgument, "window")
	_, err = public.ListTrending(ctx, &digestv1.ListTrendingRequest{Topics: []string{"astrology"}})
	wantCode(t, err, codes.InvalidArgument, "topics[0]")

	_, err = public.PreviewDigest(ctx, &digestv1.PreviewDigestRequest{Preferences: &subscriberv1.Preferences{Topics: []string{"astrology"}}})
	wantCode(t, err, codes.InvalidArgument, "preferences.topics[0]")
	_, err = public.PreviewDigest(ctx, &digestv1.PreviewDigestRequest{})
	wantCode(t, err, codes.InvalidArgument, "preferences")
	_, err = public.PreviewDigest(ctx, &digestv1.PreviewDigestRequest{SubscriberId: "x", Preferences: &subscriberv1.Preferences{}})
	wantCode(t, err, codes.InvalidArgument, "subscriber_id")
	_, err = public.PreviewDigest(ctx, &digestv1.PreviewDigestRequest{Preferences: &subscriberv1.Preferences{}})
	wantCode(t, err, codes.FailedPrecondition, "")
}

func TestRunDigestRefusesFarEditions(t *testing.T) {
	s := start(t, nil)
	ctx := context.Background()
	for _, ed := range []string{"9999-12-31", time.Now().UTC().AddDate(0, 0, 3).Format(time.DateOnly)} {
		_, err := s.client.RunDigest(ctx, &digestv1.RunDigestRequest{Edition: ed})
		wantCode(t, err, codes.InvalidArgument, "edition")
	}
	_, err := s.client.RunDigest(ctx, &digestv1.RunDigestRequest{Slot: timestamppb.New(time.Date(2026, 6, 12, 6, 5, 0, 0, time.UTC))})
	wantCode(t, err, codes.InvalidArgument, "slot")
	if keys := s.digKeys(t); len(keys) != 0 {
		t.Errorf("refused runs stored keys %v", keys)
	}
	run := s.runDigest(t, "9999-12-31", true)
	if run.GetState() != digestv1.DigestRunState_DIGEST_RUN_STATE_SUCCEEDED || !run.GetDryRun() {
		t.Errorf("dry run of a far edition = %v, want it to run", run)
	}
	runs, err := s.client.ListDigestRuns(ctx, &digestv1.ListDigestRunsRequest{})
	if err != nil || len(runs.GetRuns()) != 1 || runs.GetRuns()[0].GetId() != run.GetId() {
		t.Errorf("ListDigestRuns = %v, %v; want the one run", runs, err)
	}
}
