package deploy

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// imageTargets are the values of the Dockerfile's SERVICE build argument.
var imageTargets = []string{"subscriber", "digest", "sender", "paperroute"}

// dockerfileInstructions returns the Dockerfile's instructions with
// continuation lines joined and comments dropped.
func dockerfileInstructions(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if more, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(line)
		out = append(out, cur.String())
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDockerfileCopiesExistingFiles checks what CI can check without a
// Docker engine: every file or directory the build stage copies from the
// build context exists and is not excluded by .dockerignore.
func TestDockerfileCopiesExistingFiles(t *testing.T) {
	ignored := dockerignore(t)
	copies := 0
	for _, ins := range dockerfileInstructions(t) {
		fields := strings.Fields(ins)
		if len(fields) < 3 || !strings.EqualFold(fields[0], "COPY") || strings.HasPrefix(fields[1], "--from") {
			continue
		}
		for _, src := range fields[1 : len(fields)-1] {
			copies++
			if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
				t.Errorf("deploy/Dockerfile: %q copies %s, which is not in the repository: %v", ins, src, err)
			}
			for _, pattern := range ignored {
				if strings.TrimSuffix(src, "/") == pattern || strings.HasPrefix(src, pattern+"/") {
					t.Errorf("deploy/Dockerfile copies %s, but .dockerignore excludes %s", src, pattern)
				}
			}
		}
	}
	if copies < 10 {
		t.Fatalf("found %d COPY sources in deploy/Dockerfile; the parser no longer understands it", copies)
	}
}

// TestDockerfileTargets checks that each SERVICE value has its final stage
// and a deploy/build target, and that the build stage builds through
// deploy/build (so deploy/check builds exactly what the image holds).
func TestDockerfileTargets(t *testing.T) {
	var stages []string
	buildsWithScript := false
	for _, ins := range dockerfileInstructions(t) {
		if m := regexp.MustCompile(`(?i)^FROM\s+\S+\s+AS\s+run-(\S+)$`).FindStringSubmatch(ins); m != nil {
			stages = append(stages, m[1])
		}
		if strings.HasPrefix(ins, "RUN ") && strings.Contains(ins, `deploy/build "$SERVICE" /out`) {
			buildsWithScript = true
		}
	}
	slices.Sort(stages)
	want := slices.Clone(imageTargets)
	slices.Sort(want)
	if !slices.Equal(stages, want) {
		t.Errorf("deploy/Dockerfile run-* stages = %v, want %v", stages, want)
	}
	if !buildsWithScript {
		t.Error(`deploy/Dockerfile does not build with deploy/build "$SERVICE" /out`)
	}
	script, err := os.ReadFile("build")
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range append(imageTargets, "healthcheck") {
		if !regexp.MustCompile(`(?m)^[a-z |]*\b` + target + `\b[a-z |]*\)`).Match(script) {
			t.Errorf("deploy/build has no case for %s", target)
		}
	}
}

// dockerignore returns the .dockerignore patterns (plain paths only).
func dockerignore(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.ContainsAny(line, "*?[!") {
			continue
		}
		patterns = append(patterns, strings.Trim(line, "/"))
	}
	return patterns
}
