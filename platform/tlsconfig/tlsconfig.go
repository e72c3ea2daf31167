// Package tlsconfig turns the TLS settings every paperroute service shares
// into crypto/tls configurations: a server certificate for the gRPC port
// (with optional mutual TLS), TLS for calls to the other services, and TLS
// for rediss:// Redis. Certificates are PEM files, re-read when they change
// on disk, so a rotated certificate (cert-manager, a renewed Secret) is
// picked up by new connections without a restart.
package tlsconfig

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/paperroute/paperroute/platform/envload"
)

// Env is the TLS part of a service's environment. All values are file
// paths; empty means off. The same names serve every service: each process
// has its own certificate (`paperroute all` serves one on its three ports).
type Env struct {
	// GRPCCert and GRPCKey are this process's certificate and key: served
	// on its gRPC port (TLS only, once set) and presented to services
	// that require mutual TLS. PAPERROUTE_GRPC_TLS_CERT,
	// PAPERROUTE_GRPC_TLS_KEY.
	GRPCCert string `env:"PAPERROUTE_GRPC_TLS_CERT"`
	GRPCKey  string `env:"PAPERROUTE_GRPC_TLS_KEY"`
	// GRPCClientCA, when set, makes the gRPC server require a client
	// certificate signed by it (mutual TLS). PAPERROUTE_GRPC_TLS_CLIENT_CA.
	GRPCClientCA string `env:"PAPERROUTE_GRPC_TLS_CLIENT_CA"`
	// GRPCCA, when set, turns on TLS for calls to the other services,
	// verifying their certificates against it. PAPERROUTE_GRPC_TLS_CA.
	GRPCCA string `env:"PAPERROUTE_GRPC_TLS_CA"`
	// RedisCA verifies a rediss:// server instead of the system roots.
	// REDIS_TLS_CA.
	RedisCA string `env:"REDIS_TLS_CA"`
	// RedisCert and RedisKey are a client certificate for a Redis that
	// requires one (tls-auth-clients yes). REDIS_TLS_CERT, REDIS_TLS_KEY.
	RedisCert string `env:"REDIS_TLS_CERT"`
	RedisKey  string `env:"REDIS_TLS_KEY"`
}

// Load reads the TLS settings through getenv and checks that the files
// load, reporting every problem at once.
func Load(ctx context.Context, getenv func(string) string) (Env, error) {
	var e Env
	if err := envload.Load(ctx, getenv, &e); err != nil {
		return Env{}, err
	}
	var errs []error
	if (e.GRPCCert == "") != (e.GRPCKey == "") {
		errs = append(errs, errors.New("PAPERROUTE_GRPC_TLS_CERT and PAPERROUTE_GRPC_TLS_KEY: set both or neither"))
	}
	if e.GRPCClientCA != "" && e.GRPCCert == "" {
		errs = append(errs, errors.New("PAPERROUTE_GRPC_TLS_CLIENT_CA needs PAPERROUTE_GRPC_TLS_CERT and _KEY: mutual TLS is TLS first"))
	}
	if (e.RedisCert == "") != (e.RedisKey == "") {
		errs = append(errs, errors.New("REDIS_TLS_CERT and REDIS_TLS_KEY: set both or neither"))
	}
	if len(errs) == 0 {
		if e.GRPCCert != "" {
			if _, err := tls.LoadX509KeyPair(e.GRPCCert, e.GRPCKey); err != nil {
				errs = append(errs, fmt.Errorf("PAPERROUTE_GRPC_TLS_CERT/_KEY: %w", err))
			}
		}
		if e.RedisCert != "" {
			if _, err := tls.LoadX509KeyPair(e.RedisCert, e.RedisKey); err != nil {
				errs = append(errs, fmt.Errorf("REDIS_TLS_CERT/_KEY: %w", err))
			}
		}
		for _, ca := range []struct{ name, file string }{
			{"PAPERROUTE_GRPC_TLS_CLIENT_CA", e.GRPCClientCA}, {"PAPERROUTE_GRPC_TLS_CA", e.GRPCCA}, {"REDIS_TLS_CA", e.RedisCA},
		} {
			if ca.file != "" {
				if _, err := loadPool(ca.file); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", ca.name, err))
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Env{}, fmt.Errorf("config: %w", err)
	}
	return e, nil
}

// GRPCServer returns the gRPC server's TLS configuration, or nil (plaintext)
// when no certificate is set.
func (e Env) GRPCServer() (*tls.Config, error) {
	if e.GRPCCert == "" {
		return nil, nil
	}
	kp, err := newKeyPair(e.GRPCCert, e.GRPCKey)
	if err != nil {
		return nil, fmt.Errorf("tlsconfig: PAPERROUTE_GRPC_TLS_CERT/_KEY: %w", err)
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get() },
	}
	if e.GRPCClientCA != "" {
		pool, err := loadPool(e.GRPCClientCA)
		if err != nil {
			return nil, fmt.Errorf("tlsconfig: PAPERROUTE_GRPC_TLS_CLIENT_CA: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// GRPCClient returns the TLS configuration for calls to the other services,
// or nil (plaintext) when PAPERROUTE_GRPC_TLS_CA is not set. It presents
// this process's certificate to servers that ask for one.
func (e Env) GRPCClient() (*tls.Config, error) {
	if e.GRPCCA == "" {
		return nil, nil
	}
	return clientConfig("PAPERROUTE_GRPC_TLS", e.GRPCCA, e.GRPCCert, e.GRPCKey)
}

// Redis returns what a rediss:// connection needs beyond the URL (custom
// roots, a client certificate), or nil when none of REDIS_TLS_* is set.
func (e Env) Redis() (*tls.Config, error) {
	if e.RedisCA == "" && e.RedisCert == "" {
		return nil, nil
	}
	return clientConfig("REDIS_TLS", e.RedisCA, e.RedisCert, e.RedisKey)
}

func clientConfig(prefix, caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := loadPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("tlsconfig: %s_CA: %w", prefix, err)
		}
		cfg.RootCAs = pool
	}
	if certFile != "" {
		kp, err := newKeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("tlsconfig: %s_CERT/_KEY: %w", prefix, err)
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() }
	}
	return cfg, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// keyPair is a certificate and key from files, re-read when either file's
// modification time changes (checked at most once a second).
type keyPair struct {
	certFile, keyFile string

	mu       sync.Mutex
	cert     *tls.Certificate
	modTimes [2]time.Time
	checked  time.Time
}

func newKeyPair(certFile, keyFile string) (*keyPair, error) {
	kp := &keyPair{certFile: certFile, keyFile: keyFile}
	if _, err := kp.get(); err != nil {
		return nil, err
	}
	return kp, nil
}

// get returns the current certificate. A file that fails to re-load keeps
// the previous certificate in use (a rotation caught half-written).
func (kp *keyPair) get() (*tls.Certificate, error) {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	now := time.Now()
	if kp.cert != nil && now.Sub(kp.checked) < time.Second {
		return kp.cert, nil
	}
	kp.checked = now
	var mod [2]time.Time
	for i, f := range []string{kp.certFile, kp.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			if kp.cert != nil {
				return kp.cert, nil
			}
			return nil, err
		}
		mod[i] = st.ModTime()
	}
	if kp.cert != nil && mod == kp.modTimes {
		return kp.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(kp.certFile, kp.keyFile)
	if err != nil {
		if kp.cert != nil {
			return kp.cert, nil
		}
		return nil, err
	}
	kp.cert, kp.modTimes = &cert, mod
	return kp.cert, nil
}
