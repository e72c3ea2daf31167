package deploy

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The domain packages hold the behaviour and nothing of the transport,
// the store or the metrics system (docs/architecture.md, "How a service is
// laid out"); adapters import the domain, never the reverse.
func TestDomainPackagesStayFreeOfAdapters(t *testing.T) {
	forbidden := []string{"google.golang.org/grpc", "github.com/redis/go-redis/v9", "github.com/prometheus/client_golang/prometheus"}
	checks := []struct {
		module string
		pkgs   []string
		also   []string // further forbidden imports
	}{
		{module: "services/subscriber", pkgs: []string{"./internal/subscription"}},
		{module: "services/digest", pkgs: []string{"./internal/digest"}},
		{module: "services/sender", pkgs: []string{"./internal/queue", "./internal/delivery"}},
		// Configuration reads the environment; it does not build adapters.
		{module: "services/sender", pkgs: []string{"./internal/config"}, also: []string{"github.com/paperroute/paperroute/services/sender/internal/smtpmail"}},
	}
	for _, c := range checks {
		for _, pkg := range c.pkgs {
			cmd := exec.Command("go", "list", "-deps", pkg)
			cmd.Dir = filepath.Join(repoRoot, c.module)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps %s in %s: %v", pkg, c.module, err)
			}
			deps := strings.Fields(string(out))
			if len(deps) < 2 {
				t.Fatalf("go list -deps %s listed %d packages: not a real package list", pkg, len(deps))
			}
			for _, dep := range deps {
				for _, bad := range append(forbidden, c.also...) {
					if dep == bad || strings.HasPrefix(dep, bad+"/") {
						t.Errorf("%s/%s imports %s", c.module, pkg, dep)
					}
				}
			}
		}
	}
}
