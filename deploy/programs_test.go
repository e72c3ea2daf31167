package deploy

import (
	"os"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// programModules says which modules' code runs in each deployable program,
// so a container's environment can be checked against what its program
// reads.
var programModules = map[string][]string{
	"subscriber": {"services/subscriber", "platform"},
	"digest":     {"services/digest", "platform"},
	"sender":     {"services/sender", "platform"},
	"paperroute": {"cmd/paperroute", "services/subscriber", "services/digest", "services/sender", "platform"},
}

// programReads returns, per program, the variables its code reads.
func programReads(t *testing.T) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	for prog, mods := range programModules {
		out[prog] = map[string]bool{}
		for _, mod := range mods {
			for _, r := range envReads(t, repoRoot, mod) {
				out[prog][r.Name] = true
			}
		}
	}
	return out
}

// checkEnv reports every variable in set that program does not read or
// docs/configuration.md does not document. where says whose environment it
// is ("deploy/compose.yaml service sender").
func checkEnv(t *testing.T, where, program string, set []string, reads map[string]map[string]bool, docs map[string]int) {
	t.Helper()
	progReads, ok := reads[program]
	if !ok {
		t.Errorf("%s: runs unknown program %q (want one of %v)", where, program, sortedKeys(reads))
		return
	}
	for _, name := range set {
		if !progReads[name] {
			t.Errorf("%s sets %s, which %s never reads (a typo, or a variable of another service)", where, name, program)
		}
		if _, ok := docs[name]; !ok {
			t.Errorf("%s sets %s, which docs/configuration.md does not document", where, name)
		}
	}
}

type composeFile struct {
	Services map[string]struct {
		Image       string                            `yaml:"image"`
		Build       *struct{ Args map[string]string } `yaml:"build"`
		Environment map[string]string                 `yaml:"environment"`
		Volumes     []string                          `yaml:"volumes"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
}

// TestComposeFile checks deploy/compose.yaml: each paperroute service is
// built from the Dockerfile with a known SERVICE, sets only variables its
// program reads and the docs document, and has a health check; every
// mounted file exists.
func TestComposeFile(t *testing.T) {
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	reads, docs := programReads(t), documentedVars(t)
	built := map[string]bool{}
	for name, svc := range c.Services {
		if svc.Healthcheck == nil || len(svc.Healthcheck.Test) == 0 {
			t.Errorf("deploy/compose.yaml: service %s has no healthcheck", name)
		}
		for _, v := range svc.Volumes {
			// A bind mount ("./redis.conf:/path:ro") names a file beside
			// compose.yaml; a named volume ("redis-data:/data") does not.
			if src, _, ok := strings.Cut(v, ":"); ok && strings.HasPrefix(src, ".") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("deploy/compose.yaml: service %s mounts %s: %v", name, src, err)
				}
			}
		}
		if svc.Build == nil {
			continue
		}
		program := svc.Build.Args["SERVICE"]
		built[program] = true
		env := sortedKeys(svc.Environment)
		checkEnv(t, "deploy/compose.yaml service "+name, program, env, reads, docs)
	}
	var got []string
	for p := range built {
		got = append(got, p)
	}
	sort.Strings(got)
	if want := []string{"digest", "sender", "subscriber"}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("deploy/compose.yaml builds %v, want %v", got, want)
	}
}

// TestSystemdEnvironmentFile checks the example environment of the systemd
// unit: only variables `paperroute all` reads and the docs document.
func TestSystemdEnvironmentFile(t *testing.T) {
	data, err := os.ReadFile("systemd/paperroute.env.example")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("deploy/systemd/paperroute.env.example:%d: not NAME=value: %q", i+1, line)
			continue
		}
		names = append(names, name)
	}
	checkEnv(t, "deploy/systemd/paperroute.env.example", "paperroute", names, programReads(t), documentedVars(t))
	unit, err := os.ReadFile("systemd/paperroute.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "ExecStart=/usr/local/bin/paperroute all\n") {
		t.Error("deploy/systemd/paperroute.service does not run `paperroute all`")
	}
}
