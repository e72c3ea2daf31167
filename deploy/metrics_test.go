package deploy

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// metricName matches paperroute's own metric names and the gRPC server
// metrics in a PromQL expression.
var metricName = regexp.MustCompile(`\b(?:sender|subscriber|digest|grpc_server)_[a-z_]+\b`)

// catalogued returns the metric names docs/metrics.md lists (the first cell
// of its table rows, which may hold several names).
func catalogued(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.SplitN(line, "|", 3)[1]
		for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(first, -1) {
			names[m[1]] = true
		}
	}
	if len(names) < 20 {
		t.Fatalf("docs/metrics.md lists only %d metrics; the parser no longer understands its tables", len(names))
	}
	return names
}

// checkCatalogued reports each metric expr uses that docs/metrics.md does
// not list (histogram series are listed by their base name).
func checkCatalogued(t *testing.T, where, expr string, names map[string]bool) {
	t.Helper()
	for _, m := range metricName.FindAllString(expr, -1) {
		base := m
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if b, ok := strings.CutSuffix(m, suffix); ok && names[b] {
				base = b
			}
		}
		if !names[base] {
			t.Errorf("%s uses %s, which docs/metrics.md does not catalogue", where, m)
		}
	}
}

// TestDashboard checks that the Grafana dashboard is valid JSON with
// panels, each querying only catalogued metrics.
func TestDashboard(t *testing.T) {
	data, err := os.ReadFile("prometheus/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("deploy/prometheus/dashboard.json is not valid JSON: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard wants a title, a uid and panels; has title %q uid %q and %d panels", d.Title, d.UID, len(d.Panels))
	}
	names := catalogued(t)
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			checkCatalogued(t, "dashboard panel "+p.Title, target.Expr, names)
		}
	}
}

// TestAlertRulesUseCataloguedMetrics checks the alert rules against
// docs/metrics.md (promtool checks their syntax in deploy/check).
func TestAlertRulesUseCataloguedMetrics(t *testing.T) {
	data, err := os.ReadFile("prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatal(err)
	}
	names := catalogued(t)
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			checkCatalogued(t, "alert "+r.Alert, r.Expr, names)
			if !strings.Contains(string(doc), "`"+r.Alert+"`") {
				t.Errorf("alert %s is not listed in docs/metrics.md's Alerts table", r.Alert)
			}
		}
	}
	if n < 6 {
		t.Fatalf("found %d alert rules in deploy/prometheus/alerts.yaml", n)
	}
}

// registeredMetrics finds the metrics paperroute's own code registers: a
// `Name: "sender_…"` (or subscriber_, digest_) field in a non-test file.
func registeredMetrics(t *testing.T) map[string]string {
	t.Helper()
	own := regexp.MustCompile(`^(?:sender|subscriber|digest)_[a-z0-9_]+$`)
	found := map[string]string{}
	for _, mod := range workspaceModules(t) {
		walkGo(t, repoRoot, mod, func(fset *token.FileSet, f *ast.File, rel string) {
			ast.Inspect(f, func(n ast.Node) bool {
				kv, ok := n.(*ast.KeyValueExpr)
				if !ok {
					return true
				}
				if key, ok := kv.Key.(*ast.Ident); !ok || key.Name != "Name" {
					return true
				}
				if name, ok := constString(kv.Value, nil); ok && own.MatchString(name) {
					found[name] = fmt.Sprintf("%s:%d", rel, fset.Position(kv.Pos()).Line)
				}
				return true
			})
		})
	}
	return found
}

// TestMetricsCatalogueIsHonest checks docs/metrics.md against the code:
// every metric the code registers is listed and marked exported, and every
// metric marked exported is registered (the gRPC, Go and process metrics
// come from libraries and are not checked).
func TestMetricsCatalogueIsHonest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "| `") || len(cells) < 6 {
			continue
		}
		for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(cells[1], -1) {
			status[m[1]] = strings.TrimSpace(cells[4])
		}
	}
	code := registeredMetrics(t)
	for name, at := range code {
		switch st, ok := status[name]; {
		case !ok:
			t.Errorf("%s registers %s, which docs/metrics.md does not list", at, name)
		case st != "exported":
			t.Errorf("%s registers %s, which docs/metrics.md marks %q: mark it exported", at, name, st)
		}
	}
	for name, st := range status {
		own := strings.HasPrefix(name, "sender_") || strings.HasPrefix(name, "subscriber_") || strings.HasPrefix(name, "digest_")
		if own && st == "exported" && code[name] == "" {
			t.Errorf("docs/metrics.md marks %s exported, but no code registers it", name)
		}
	}
}
