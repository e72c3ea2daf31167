package browserrpc_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/paperroute/paperroute/platform/browserrpc"
)

// testService answers UnaryCall with what it saw of the caller: the client
// address in Username, the user agent in ServerId and whether an
// Authorization header arrived in OauthScope. A request with fill_username
// set fails InvalidArgument with a field violation.
type testService struct {
	testpb.UnimplementedTestServiceServer
}

func (testService) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if req.GetFillUsername() {
		st, _ := status.New(codes.InvalidArgument, "bad request").WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "fill_username", Description: "must be false"}},
		})
		return nil, st.Err()
	}
	ip, ua, ok := browserrpc.Caller(ctx)
	if !ok {
		return nil, status.Error(codes.FailedPrecondition, "not a browser call")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	auth := "none"
	if len(md.Get("authorization")) > 0 {
		auth = "present"
	}
	return &testpb.SimpleResponse{Username: ip, ServerId: ua, OauthScope: auth}, nil
}

func (testService) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	return &testpb.Empty{}, nil
}

const (
	unaryPath = "/grpc.testing.TestService/UnaryCall"
	emptyPath = "/grpc.testing.TestService/EmptyCall"
)

func newServer(t *testing.T, cfg browserrpc.Config) *httptest.Server {
	t.Helper()
	g := grpc.NewServer()
	testpb.RegisterTestServiceServer(g, testService{})
	if cfg.Expose == nil {
		cfg.Expose = func(m string) bool { return m == unaryPath }
	}
	h, prefixes, err := browserrpc.Handler(g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, p := range prefixes {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, url, contentType string, body []byte, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if !strings.HasPrefix(contentType, "application/grpc") {
		req.Header.Set("Connect-Protocol-Version", "1") // as connect-es sends
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConnectJSON(t *testing.T) {
	srv := newServer(t, browserrpc.Config{})
	resp := post(t, srv.URL+unaryPath, "application/json", []byte(`{}`), map[string]string{
		"User-Agent": "test-browser/1", browserrpc.ClientIPKey: "203.0.113.9", "Authorization": "Bearer admin",
	})
	body := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	var got struct{ Username, ServerId, OauthScope string }
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("response %s: %v", body, err)
	}
	if got.Username != "127.0.0.1" || got.ServerId != "test-browser/1" || got.OauthScope != "none" {
		t.Errorf("the service saw client %q, agent %q, authorization %q; want the connection's 127.0.0.1 (not the forged header), the browser's agent, and no credentials",
			got.Username, got.ServerId, got.OauthScope)
	}
}

func TestConnectBinary(t *testing.T) {
	srv := newServer(t, browserrpc.Config{})
	req, _ := proto.Marshal(&testpb.SimpleRequest{})
	resp := post(t, srv.URL+unaryPath, "application/proto", req, nil)
	body := readAll(t, resp.Body)
	var got testpb.SimpleResponse
	if resp.StatusCode != http.StatusOK || proto.Unmarshal(body, &got) != nil || got.GetUsername() != "127.0.0.1" {
		t.Errorf("status %d, response %v; want 200 with the caller's address", resp.StatusCode, &got)
	}
}

func TestGRPCWeb(t *testing.T) {
	srv := newServer(t, browserrpc.Config{})
	msg, _ := proto.Marshal(&testpb.SimpleRequest{})
	frame := append([]byte{0, 0, 0, 0, 0}, msg...)
	binary.BigEndian.PutUint32(frame[1:5], uint32(len(msg)))
	resp := post(t, srv.URL+unaryPath, "application/grpc-web+proto", frame, map[string]string{"X-Grpc-Web": "1"})
	body := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusOK || len(body) < 5 || body[0] != 0 {
		t.Fatalf("status %d, body %q; want 200 with a data frame", resp.StatusCode, body)
	}
	n := binary.BigEndian.Uint32(body[1:5])
	var got testpb.SimpleResponse
	if err := proto.Unmarshal(body[5:5+n], &got); err != nil || got.GetUsername() != "127.0.0.1" {
		t.Errorf("response %v, %v; want the caller's address", &got, err)
	}
	if !bytes.Contains(bytes.ToLower(body[5+n:]), []byte("grpc-status: 0")) {
		t.Errorf("trailer frame %q lacks grpc-status:0", body[5+n:])
	}
}

func TestErrorDetailsReachTheBrowser(t *testing.T) {
	srv := newServer(t, browserrpc.Config{})
	resp := post(t, srv.URL+unaryPath, "application/json", []byte(`{"fillUsername":true}`), nil)
	body := readAll(t, resp.Body)
	var got struct {
		Code    string
		Details []struct{ Type, Value string }
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if resp.StatusCode != http.StatusBadRequest || got.Code != "invalid_argument" || len(got.Details) != 1 ||
		got.Details[0].Type != "google.rpc.BadRequest" {
		t.Fatalf("status %d, body %s; want 400 invalid_argument with a google.rpc.BadRequest detail", resp.StatusCode, body)
	}
}

func TestRefusals(t *testing.T) {
	srv := newServer(t, browserrpc.Config{AllowedOrigins: []string{"https://app.example"}})
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		header      map[string]string
		wantStatus  int
	}{
		{name: "method not exposed", method: http.MethodPost, path: emptyPath, contentType: "application/json", wantStatus: http.StatusNotFound},
		{name: "origin not allowed", method: http.MethodPost, path: unaryPath, contentType: "application/json",
			header: map[string]string{"Origin": "https://evil.example"}, wantStatus: http.StatusForbidden},
		{name: "preflight from a stranger", method: http.MethodOptions, path: unaryPath,
			header: map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}, wantStatus: http.StatusForbidden},
		{name: "native gRPC", method: http.MethodPost, path: unaryPath, contentType: "application/grpc", wantStatus: http.StatusUnsupportedMediaType},
		{name: "PUT", method: http.MethodPut, path: unaryPath, contentType: "application/json", wantStatus: http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(`{}`))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("refused request got Access-Control-Allow-Origin %q", resp.Header.Get("Access-Control-Allow-Origin"))
			}
		})
	}
}

func TestCORSAllowedOrigin(t *testing.T) {
	srv := newServer(t, browserrpc.Config{AllowedOrigins: []string{"https://app.example"}})
	req, _ := http.NewRequest(http.MethodOptions, srv.URL+unaryPath, nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type,connect-protocol-version")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Connect-Protocol-Version") ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: status %d, headers %v", resp.StatusCode, h)
	}
	call := post(t, srv.URL+unaryPath, "application/json", []byte(`{}`), map[string]string{"Origin": "https://app.example"})
	if call.StatusCode != http.StatusOK || call.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(call.Header.Get("Access-Control-Expose-Headers"), "Grpc-Status-Details-Bin") {
		t.Errorf("call: status %d, headers %v", call.StatusCode, call.Header)
	}
}

func TestTrustedProxyHeader(t *testing.T) {
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	other := netip.MustParsePrefix("10.0.0.0/8")
	for _, tt := range []struct {
		name    string
		proxies []netip.Prefix
		want    string
	}{
		{name: "from a trusted proxy", proxies: []netip.Prefix{loopback}, want: "198.51.100.7"},
		{name: "from anyone else", proxies: []netip.Prefix{other}, want: "127.0.0.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, browserrpc.Config{TrustedProxies: tt.proxies, ClientIPHeader: "X-Forwarded-For"})
			resp := post(t, srv.URL+unaryPath, "application/json", []byte(`{}`), map[string]string{"X-Forwarded-For": "192.0.2.1, 198.51.100.7"})
			var got struct{ Username string }
			_ = json.Unmarshal(readAll(t, resp.Body), &got)
			if got.Username != tt.want {
				t.Errorf("client address %q, want %q", got.Username, tt.want)
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, err := browserrpc.FromEnv(env(map[string]string{
		"X_ALLOWED_ORIGINS": "https://a.example, http://localhost:8080", "X_TRUSTED_PROXIES": "10.0.0.0/8,::1/128",
		"X_CLIENT_IP_HEADER": "X-Forwarded-For",
	}), "X")
	if err != nil || len(cfg.AllowedOrigins) != 2 || len(cfg.TrustedProxies) != 2 || cfg.ClientIPHeader != "X-Forwarded-For" {
		t.Errorf("FromEnv = %+v, %v", cfg, err)
	}
	for name, m := range map[string]map[string]string{
		"origin with a path":     {"X_ALLOWED_ORIGINS": "https://a.example/app"},
		"not an origin":          {"X_ALLOWED_ORIGINS": "a.example"},
		"bad CIDR":               {"X_TRUSTED_PROXIES": "10.0.0.0/33", "X_CLIENT_IP_HEADER": "X-Real-IP"},
		"header without proxy":   {"X_CLIENT_IP_HEADER": "X-Real-IP"},
		"proxies without header": {"X_TRUSTED_PROXIES": "10.0.0.0/8"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := browserrpc.FromEnv(env(m), "X"); err == nil || !strings.Contains(err.Error(), "X_") {
				t.Errorf("FromEnv = %v, want an error naming the variable", err)
			}
		})
	}
}
