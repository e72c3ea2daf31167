package deploy

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is the repository root, seen from this package's directory.
const repoRoot = ".."

// envRead is one place the code reads an environment variable.
type envRead struct {
	Name string
	Pos  string // file:line, relative to the repository root
}

// readByLibraries are variables no paperroute code reads by name but a
// library does on its behalf; they are documented like the rest.
var readByLibraries = map[string]bool{
	// The OpenTelemetry SDK (platform/tracing builds its provider with the
	// SDK's defaults, which come from these).
	"OTEL_TRACES_SAMPLER": true, "OTEL_TRACES_SAMPLER_ARG": true, "OTEL_SPAN_LINK_COUNT_LIMIT": true,
}

// workspaceModules lists the module directories go.work uses that hold
// deployable programs' code.
func workspaceModules(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	var mods []string
	for _, m := range regexp.MustCompile(`(?m)^\s*(?:use\s+)?\./(\S+)\s*$`).FindAllStringSubmatch(string(data), -1) {
		// deploy reads no configuration; bench's SENDERBENCH_* variables
		// are how the benchmark harness talks to its own child processes,
		// not settings of a program anyone deploys.
		if m[1] != "deploy" && m[1] != "bench" {
			mods = append(mods, m[1])
		}
	}
	if len(mods) < 5 {
		t.Fatalf("go.work lists %d modules (%v); the pattern no longer matches its use block", len(mods), mods)
	}
	return mods
}

// envReads scans the non-test Go files under dir (relative to root, the
// repository root) for the variables they read: `env:"NAME…"` struct tags
// (go-envconfig, through platform/envload) and calls of any function named
// getenv/Getenv/LookupEnv with a constant string argument.
func envReads(t *testing.T, root, dir string) []envRead {
	t.Helper()
	var reads []envRead
	walkGo(t, root, dir, func(fset *token.FileSet, f *ast.File, rel string) {
		consts := stringConsts(f)
		at := func(p token.Pos) string { return fmt.Sprintf("%s:%d", rel, fset.Position(p).Line) }
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.Field:
				if n.Tag == nil {
					return true
				}
				tag, err := strconv.Unquote(n.Tag.Value)
				if err != nil {
					return true
				}
				if v, ok := reflectTagLookup(tag, "env"); ok {
					name := strings.TrimSpace(strings.SplitN(v, ",", 2)[0])
					if name != "" && name != "-" {
						reads = append(reads, envRead{name, at(n.Pos())})
					}
				}
			case *ast.CallExpr:
				// service.RunFromEnv(ctx, getenv, deps, "PREFIX", …) reads
				// the browser settings PREFIX_* (platform/browserrpc.FromEnv).
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "RunFromEnv" && len(n.Args) > 3 {
					if prefix, ok := constString(n.Args[3], consts); ok {
						for _, v := range browserVars {
							reads = append(reads, envRead{prefix + v, at(n.Pos())})
						}
					}
					return true
				}
				if !isGetenv(n.Fun) || len(n.Args) == 0 {
					return true
				}
				if name, ok := constString(n.Args[0], consts); ok {
					reads = append(reads, envRead{name, at(n.Pos())})
				}
			}
			return true
		})
	})
	return reads
}

// walkGo parses every non-test Go file of the programs under dir (relative
// to root) and calls fn with it and its path relative to root. Test support
// packages (redistest, browsertest, sendertest, testenv…) are not part of
// any program and are skipped, as are testdata and generated code.
func walkGo(t *testing.T, root, dir string, fn func(fset *token.FileSet, f *ast.File, rel string)) {
	t.Helper()
	fset := token.NewFileSet()
	err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "testdata" || d.Name() == "gen" || strings.HasPrefix(d.Name(), ".") ||
				strings.HasSuffix(d.Name(), "test") || d.Name() == "testenv" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		fn(fset, f, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", dir, err)
	}
}

// browserVars are the suffixes browserrpc.FromEnv reads under a service's
// prefix.
var browserVars = []string{"_ALLOWED_ORIGINS", "_TRUSTED_PROXIES", "_CLIENT_IP_HEADER"}

func isGetenv(fun ast.Expr) bool {
	var name string
	switch f := fun.(type) {
	case *ast.Ident:
		name = f.Name
	case *ast.SelectorExpr:
		name = f.Sel.Name
	default:
		return false
	}
	switch strings.ToLower(name) {
	case "getenv", "lookupenv":
		return true
	}
	return false
}

// stringConsts collects the file's string constants, so getenv(envName)
// with `const envName = "X"` counts as a read of X.
func stringConsts(f *ast.File) map[string]string {
	consts := map[string]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i < len(vs.Values) {
					if s, ok := constString(vs.Values[i], nil); ok {
						consts[name.Name] = s
					}
				}
			}
		}
	}
	return consts
}

func constString(e ast.Expr, consts map[string]string) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			s, err := strconv.Unquote(e.Value)
			return s, err == nil
		}
	case *ast.Ident:
		s, ok := consts[e.Name]
		return s, ok
	}
	return "", false
}

// reflectTagLookup is reflect.StructTag.Lookup for a tag string.
func reflectTagLookup(tag, key string) (string, bool) {
	for tag != "" {
		i := 0
		for i < len(tag) && tag[i] == ' ' {
			i++
		}
		tag = tag[i:]
		i = 0
		for i < len(tag) && tag[i] > ' ' && tag[i] != ':' && tag[i] != '"' {
			i++
		}
		if i == 0 || i+1 >= len(tag) || tag[i] != ':' || tag[i+1] != '"' {
			return "", false
		}
		name := tag[:i]
		tag = tag[i+1:]
		i = 1
		for i < len(tag) && tag[i] != '"' {
			if tag[i] == '\\' {
				i++
			}
			i++
		}
		if i >= len(tag) {
			return "", false
		}
		qvalue := tag[:i+1]
		tag = tag[i+1:]
		if name == key {
			v, err := strconv.Unquote(qvalue)
			return v, err == nil
		}
	}
	return "", false
}

// documentedVars returns the variables docs/configuration.md documents: the
// first cell of a table row, written `NAME`, with the line it is on.
func documentedVars(t *testing.T) map[string]int {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\|\\s*`([A-Z][A-Z0-9_]*)`\\s*\\|")
	docs := map[string]int{}
	inSection := map[string]int{} // a peer's address may be listed by every service, once each
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if strings.HasPrefix(sc.Text(), "## ") {
			clear(inSection)
		}
		if m := row.FindStringSubmatch(sc.Text()); m != nil {
			if first, twice := inSection[m[1]]; twice {
				t.Errorf("docs/configuration.md:%d: %s is already documented in this section at line %d: keep one row", line, m[1], first)
			}
			inSection[m[1]] = line
			if _, seen := docs[m[1]]; !seen {
				docs[m[1]] = line
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return docs
}

// TestEveryVariableReadIsDocumented fails when code reads an environment
// variable that docs/configuration.md does not document, naming the
// variable and where it is read, and when the docs document one that no
// code reads any more.
func TestEveryVariableReadIsDocumented(t *testing.T) {
	docs := documentedVars(t)
	read := map[string]bool{}
	for _, mod := range workspaceModules(t) {
		for _, r := range envReads(t, repoRoot, mod) {
			read[r.Name] = true
			if _, ok := docs[r.Name]; !ok {
				t.Errorf("%s: %s is read here but not documented in docs/configuration.md: add a row `| `%s` | default | meaning |` to the table of the service that reads it", r.Pos, r.Name, r.Name)
			}
		}
	}
	if len(read) < 20 {
		t.Fatalf("found only %d variables read by the code (%v): the scan no longer sees the config packages", len(read), sortedKeys(read))
	}
	for name, line := range docs {
		if !read[name] && !readByLibraries[name] {
			t.Errorf("docs/configuration.md:%d: %s is documented but no code reads it (remove the row, or the scan in deploy/envvars_test.go misses how it is read)", line, name)
		}
	}
}

// TestEnvScanSeesEveryForm guards the scanner itself: a file with each form
// of read must yield each variable.
func TestEnvScanSeesEveryForm(t *testing.T) {
	dir := t.TempDir()
	src := `package x

import "os"

const envLevel = "X_FROM_CONST"

type env struct {
	A string ` + "`env:\"X_TAG, default=1\"`" + `
	B string ` + "`json:\"b\" env:\"X_SECOND_TAG,required\"`" + `
	C string ` + "`env:\"-\"`" + `
}

func f(getenv func(string) string) {
	_ = getenv("X_GETENV")
	_ = os.Getenv("X_OS")
	_, _ = os.LookupEnv("X_LOOKUP")
	_ = getenv(envLevel)
}
`
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x_test.go"), []byte("package x\n\nimport \"os\"\n\nvar _ = os.Getenv(\"X_IN_TEST\")\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range envReads(t, dir, ".") {
		got = append(got, r.Name)
	}
	sort.Strings(got)
	want := []string{"X_FROM_CONST", "X_GETENV", "X_LOOKUP", "X_OS", "X_SECOND_TAG", "X_TAG"}
	if !slices.Equal(got, want) {
		t.Errorf("envReads = %v, want %v", got, want)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
