package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// policyLine matches one entry of a service's auth policy, e.g.
// `senderv1.SenderService_GetQueueStats_FullMethodName: auth.Operator,`.
var policyLine = regexp.MustCompile(`(\w+Service)_(\w+)_FullMethodName:\s*([^,]+),`)

// operatorMethods reads the services' policy.go files and returns every
// method an operator may call, as "Service/Method".
func operatorMethods(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "services", "*", "internal", "grpcapi", "policy.go"))
	if err != nil || len(files) != 3 {
		t.Fatalf("want the three services' policy.go, found %v (%v)", files, err)
	}
	var out []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range policyLine.FindAllStringSubmatch(string(data), -1) {
			if strings.Contains(m[3], "auth.Operator") {
				out = append(out, m[1]+"/"+m[2])
			}
		}
	}
	return out
}

// TestEveryOperatorTaskHasARecipe fails when an RPC open to operators has no
// grpcurl recipe in docs/operations.md: the operator guide is the one place
// an operator learns what they can do.
func TestEveryOperatorTaskHasARecipe(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	guide := string(data)
	methods := operatorMethods(t)
	if len(methods) < 20 {
		t.Fatalf("found only %d operator methods in the policies (%v): has the policy format changed?", len(methods), methods)
	}
	for _, m := range methods {
		if !regexp.MustCompile(`grpcurl [^\n]*(\\\n[^\n]*)*` + regexp.QuoteMeta(m) + `\b`).MatchString(guide) {
			t.Errorf("docs/operations.md has no grpcurl recipe calling %s", m)
		}
	}
}
