package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	// The three services' descriptors, registered by their generated code.
	_ "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	_ "github.com/paperroute/paperroute/api/gen/paperroute/sender/v1"
	_ "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
)

// recipe is one grpcurl command found in the docs.
type recipe struct {
	where  string // file:line
	body   string // the -d argument, when inline
	method string // paperroute.<svc>.v1.<Service>/<Method>
}

var (
	grpcurlMethod = regexp.MustCompile(`\b(paperroute\.\w+\.v1\.\w+)/(\w+)\b`)
	grpcurlBody   = regexp.MustCompile(`-d '([^']*)'`)
)

// docRecipes returns the grpcurl commands of the Markdown files, with
// continuation lines joined.
func docRecipes(t *testing.T, files ...string) []recipe {
	t.Helper()
	var out []recipe
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for i := 0; i < len(lines); i++ {
			start := i
			cmd := lines[i]
			for strings.HasSuffix(cmd, `\`) && i+1 < len(lines) {
				i++
				cmd = strings.TrimSuffix(cmd, `\`) + " " + lines[i]
			}
			if !strings.Contains(cmd, "grpcurl ") {
				continue
			}
			m := grpcurlMethod.FindStringSubmatch(cmd)
			if m == nil {
				continue // grpcurl list/describe, or prose
			}
			r := recipe{where: filepath.Base(f) + ":" + strconv.Itoa(start+1), method: m[1] + "/" + m[2]}
			if b := grpcurlBody.FindStringSubmatch(cmd); b != nil {
				r.body = b[1]
			}
			out = append(out, r)
		}
	}
	return out
}

// TestDocumentedRecipesMatchTheAPI checks every grpcurl command in the
// docs against the service descriptors: the method exists and the inline
// request parses as that method's request message, so a renamed field or
// method breaks this test rather than an operator's night.
func TestDocumentedRecipesMatchTheAPI(t *testing.T) {
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, "../../README.md")
	recipes := docRecipes(t, docs...)
	if len(recipes) < 40 {
		t.Fatalf("found only %d grpcurl recipes in the docs; has the format changed?", len(recipes))
	}
	for _, r := range recipes {
		svc, method, _ := strings.Cut(r.method, "/")
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
		if err != nil {
			t.Errorf("%s: %s: no such service", r.where, svc)
			continue
		}
		sd, ok := d.(protoreflect.ServiceDescriptor)
		if !ok {
			t.Errorf("%s: %s is not a service", r.where, svc)
			continue
		}
		md := sd.Methods().ByName(protoreflect.Name(method))
		if md == nil {
			t.Errorf("%s: %s has no method %s", r.where, svc, method)
			continue
		}
		if r.body == "" {
			continue
		}
		msg := dynamicpb.NewMessage(md.Input())
		if err := protojson.Unmarshal([]byte(r.body), msg); err != nil {
			t.Errorf("%s: %s: the request %s does not parse: %v", r.where, r.method, r.body, err)
		}
	}
}
