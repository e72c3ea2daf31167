package devmode

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// secrets are the dev stack's generated credentials and keys. They are kept
// under var/ so that links in mails already caught stay valid across
// restarts. Real deployments set the variables themselves.
type secrets struct {
	AdminToken, ServiceToken string
	TokenKeys, EmailHashKey  string
	AdminTokenPath           string
}

// loadSecrets takes each secret from its environment variable when set, else
// from its file under varDir, else generates and writes it.
func loadSecrets(getenv func(string) string, varDir string) (secrets, error) {
	var s secrets
	var err error
	s.AdminTokenPath = filepath.Join(varDir, "admin-token")
	if s.AdminToken, err = secret(getenv, "PAPERROUTE_ADMIN_TOKEN", s.AdminTokenPath, randomToken); err != nil {
		return s, err
	}
	if getenv("PAPERROUTE_ADMIN_TOKEN") != "" {
		// The operator chose the token; still write it where the printed
		// commands read it.
		if err := os.WriteFile(s.AdminTokenPath, []byte(s.AdminToken+"\n"), 0o600); err != nil {
			return s, fmt.Errorf("devmode: write %s: %w", s.AdminTokenPath, err)
		}
	}
	dir := filepath.Join(varDir, "secrets")
	if s.ServiceToken, err = secret(getenv, "PAPERROUTE_SERVICE_TOKEN", filepath.Join(dir, "service-token"), randomToken); err != nil {
		return s, err
	}
	if s.TokenKeys, err = secret(getenv, "SUBSCRIBER_TOKEN_KEYS", filepath.Join(dir, "token-keys"), func() (string, error) {
		k, err := randomKey()
		return "dev1:" + k, err
	}); err != nil {
		return s, err
	}
	if s.EmailHashKey, err = secret(getenv, "SUBSCRIBER_EMAIL_HASH_KEY", filepath.Join(dir, "email-hash-key"), randomKey); err != nil {
		return s, err
	}
	return s, nil
}

func secret(getenv func(string) string, name, path string, generate func() (string, error)) (string, error) {
	if v := getenv(name); v != "" {
		return v, nil
	}
	if b, err := os.ReadFile(path); err == nil {
		if v := strings.TrimSpace(string(b)); v != "" {
			return v, nil
		}
	}
	v, err := generate()
	if err != nil {
		return "", fmt.Errorf("devmode: generate %s: %w", name, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("devmode: %w", err)
	}
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("devmode: write %s: %w", path, err)
	}
	return v, nil
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func randomKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}
