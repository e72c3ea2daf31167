// Package browserrpc serves a service's public RPCs to browsers: the Connect
// protocol (JSON and binary) and gRPC-Web, transcoded in-process by
// connectrpc.com/vanguard onto the service's own grpc.Server, so every call
// goes through the same interceptors (metrics, logging, recovery, auth),
// validation and rate limits as native gRPC, and no proxy has to run.
//
// Only the methods Config.Expose allows are reachable (by default the
// PUBLIC and TOKEN ones); everything else is 404 here, whatever credentials
// come with it. Browsers never present the operator or service token
// through this door: the Authorization header is dropped unless
// Config.AllowCredentials says otherwise. Cross-origin callers must be on
// the CORS allow-list.
package browserrpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"connectrpc.com/vanguard/vanguardgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Metadata keys the handler sets on every call it forwards, replacing any
// the caller sent: the end user's address and user agent as seen by this
// server. Services read them with Caller.
const (
	ClientIPKey  = "paperroute-browser-client-ip"
	UserAgentKey = "paperroute-browser-user-agent"
)

// Config says what browsers may call and from where.
type Config struct {
	// Expose reports whether the full method ("/pkg.Service/Method") may be
	// called from a browser. Required.
	Expose func(fullMethod string) bool
	// AllowedOrigins are the exact origins ("https://example.org") allowed
	// to call cross-origin; "*" allows any. Empty: same-origin only.
	AllowedOrigins []string
	// TrustedProxies are the networks of reverse proxies whose
	// ClientIPHeader is believed. Empty: the connection's address is the
	// client's.
	TrustedProxies []netip.Prefix
	// ClientIPHeader is the header a trusted proxy puts the client's
	// address in (e.g. "X-Forwarded-For": its last entry is used).
	ClientIPHeader string
	// AllowCredentials forwards the Authorization header (operator calls
	// from an admin UI). Off by default: browsers reach PUBLIC and TOKEN
	// methods only.
	AllowCredentials bool
}

// Handler returns the browser handler for srv and the URL path prefixes to
// mount it on (one per registered service, "/paperroute.x.v1.XService/").
// Register every service on srv before calling it.
func Handler(srv *grpc.Server, cfg Config) (http.Handler, []string, error) {
	if cfg.Expose == nil {
		return nil, nil, errors.New("browserrpc: Config.Expose is required")
	}
	transcoder, err := vanguardgrpc.NewTranscoder(srv)
	if err != nil {
		return nil, nil, fmt.Errorf("browserrpc: %w", err)
	}
	var prefixes []string
	for name := range srv.GetServiceInfo() {
		if strings.HasPrefix(name, "grpc.health.") || strings.HasPrefix(name, "grpc.reflection.") {
			continue // health and reflection stay native gRPC
		}
		prefixes = append(prefixes, "/"+name+"/")
	}
	slices.Sort(prefixes)
	return &handler{next: transcoder, cfg: cfg}, prefixes, nil
}

type handler struct {
	next http.Handler
	cfg  Config
}

// Headers a browser call may carry, and response headers its script may
// read (the Connect and gRPC-Web error and trailer headers).
const (
	allowHeaders  = "Content-Type, Connect-Protocol-Version, Connect-Timeout-Ms, Grpc-Timeout, X-Grpc-Web, X-User-Agent"
	exposeHeaders = "Grpc-Status, Grpc-Message, Grpc-Status-Details-Bin, Connect-Protocol-Version"
)

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin != "" && !sameOrigin(r, origin) {
		if !h.originAllowed(origin) {
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
		w.Header().Set("Access-Control-Expose-Headers", exposeHeaders)
		if r.Method == http.MethodOptions {
			headers := allowHeaders
			if h.cfg.AllowCredentials {
				headers += ", Authorization"
			}
			w.Header().Set("Access-Control-Allow-Methods", "POST, GET")
			w.Header().Set("Access-Control-Allow-Headers", headers)
			w.Header().Set("Access-Control-Max-Age", "7200")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct == "application/grpc" || strings.HasPrefix(ct, "application/grpc+") {
		http.Error(w, "native gRPC is served on the gRPC port", http.StatusUnsupportedMediaType)
		return
	}
	if !h.cfg.Expose(r.URL.Path) {
		http.NotFound(w, r)
		return
	}
	r = r.Clone(r.Context())
	if !h.cfg.AllowCredentials {
		r.Header.Del("Authorization")
	}
	ip := h.cfg.ClientIP(r)
	r.Header.Set(ClientIPKey, ip.String())
	r.Header.Set(UserAgentKey, r.UserAgent())
	h.next.ServeHTTP(w, r)
}

func (h *handler) originAllowed(origin string) bool {
	return slices.Contains(h.cfg.AllowedOrigins, "*") || slices.Contains(h.cfg.AllowedOrigins, origin)
}

// sameOrigin reports whether origin names this server as the request
// reached it (a page it served calling back).
func sameOrigin(r *http.Request, origin string) bool {
	host := strings.TrimPrefix(strings.TrimPrefix(origin, "http://"), "https://")
	return host == r.Host
}

// ClientIP is the address of the caller of an HTTP request: the
// connection's, or the one a trusted proxy reported in ClientIPHeader. The
// service's HTML pages use it too, so rate limits and consent evidence see
// the reader, not the proxy.
func (c Config) ClientIP(r *http.Request) netip.Addr {
	remote, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		a, _ := netip.ParseAddr(host)
		return a.Unmap()
	}
	addr := remote.Addr().Unmap()
	if c.ClientIPHeader == "" || !slices.ContainsFunc(c.TrustedProxies, func(p netip.Prefix) bool { return p.Contains(addr) }) {
		return addr
	}
	v := r.Header.Get(c.ClientIPHeader)
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	if fwd, err := netip.ParseAddr(strings.TrimSpace(v)); err == nil {
		return fwd.Unmap()
	}
	return addr
}

// Caller returns the end user's address and user agent when the call came
// through the browser handler; ok is false for native gRPC calls. A service
// uses them instead of client-supplied request fields, which a browser
// could forge.
func Caller(ctx context.Context) (ip, userAgent string, ok bool) {
	md, found := metadata.FromIncomingContext(ctx)
	if !found {
		return "", "", false
	}
	ips := md.Get(ClientIPKey)
	if len(ips) != 1 {
		return "", "", false
	}
	return ips[0], first(md.Get(UserAgentKey)), true
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// FromEnv reads a service's browser settings from its environment:
//
//	<PREFIX>_ALLOWED_ORIGINS   comma-separated origins allowed to call cross-origin ("*" for any); default none
//	<PREFIX>_TRUSTED_PROXIES   comma-separated CIDRs of reverse proxies whose client-address header is believed
//	<PREFIX>_CLIENT_IP_HEADER  that header, e.g. X-Forwarded-For (its last entry is used)
//
// Expose is left for the caller (the service runner opens the PUBLIC
// methods).
func FromEnv(getenv func(string) string, prefix string) (Config, error) {
	var cfg Config
	for _, o := range splitList(getenv(prefix + "_ALLOWED_ORIGINS")) {
		if o != "*" && !validOrigin(o) {
			return Config{}, fmt.Errorf("%s_ALLOWED_ORIGINS: %q is not an origin (scheme://host[:port], no path)", prefix, o)
		}
		cfg.AllowedOrigins = append(cfg.AllowedOrigins, o)
	}
	for _, p := range splitList(getenv(prefix + "_TRUSTED_PROXIES")) {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return Config{}, fmt.Errorf("%s_TRUSTED_PROXIES: %q is not a CIDR prefix", prefix, p)
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, pfx.Masked())
	}
	cfg.ClientIPHeader = strings.TrimSpace(getenv(prefix + "_CLIENT_IP_HEADER"))
	if (cfg.ClientIPHeader == "") != (len(cfg.TrustedProxies) == 0) {
		return Config{}, fmt.Errorf("%s_TRUSTED_PROXIES and %s_CLIENT_IP_HEADER go together: set both or neither", prefix, prefix)
	}
	return cfg, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func validOrigin(o string) bool {
	scheme, host, ok := strings.Cut(o, "://")
	return ok && (scheme == "http" || scheme == "https") && host != "" && !strings.ContainsAny(host, "/?#@ ")
}
