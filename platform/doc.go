// Package platform is the small shared runtime of paperroute's services.
//
// Its packages hold what every service needs in the same shape: gRPC server
// construction with health, reflection, interceptors and graceful stop
// (grpcserver), operator and service-token auth (auth), the HTTP server for
// /healthz and /metrics (httpserver), the Redis client from a URL
// (redisclient), environment configuration (envload), structured logging
// (logging), field validation errors and their mapping to gRPC status
// (validation, grpcerr), and the test helpers that start a real redis-server
// (redistest), a real SMTP server (mailcatcher) and a real headless Chromium
// (browsertest).
package platform
