package mailtemplate_test

import (
	"html"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/services/sender/internal/mailtemplate"
)

func TestTemplateNames(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"none", "plain text", nil},
		{"one", "Hi {{name}}!", []string{"name"}},
		{"repeated and sorted", "{{b}} {{a}} {{b}}", []string{"a", "b"}},
		{"digits and underscores", "{{unsubscribe_url}} {{v2}}", []string{"unsubscribe_url", "v2"}},
		{"spaces are literal", "{{ name }}", nil},
		{"upper case is literal", "{{Name}}", nil},
		{"leading digit is literal", "{{2x}}", nil},
		{"LaTeX is literal", `{{\bf x}} and {{x}}`, []string{"x"}},
		{"triple braces", "{{{x}}}", []string{"x"}},
		{"unclosed", "{{name", nil},
		{"single closing brace", "{{name}", nil},
		{"empty", "{{}}", nil},
		{"64 characters", "{{" + strings.Repeat("a", 64) + "}}", []string{strings.Repeat("a", 64)}},
		{"65 characters is literal", "{{" + strings.Repeat("a", 65) + "}}", nil},
		{"adjacent", "{{a}}{{b}}", []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mailtemplate.Parse(tt.in).Names()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Names(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestTemplateRender(t *testing.T) {
	vars := map[string]string{"name": `<b>Ada</b> & "co"`, "url": "https://x.example/u?a=1&b=2", "loop": "{{name}}"}
	tests := []struct {
		name   string
		in     string
		escape func(string) string
		want   string
	}{
		{"plain", "Hi {{name}}!", nil, `Hi <b>Ada</b> & "co"!`},
		{"escaped for HTML", "<p>Hi {{name}}</p>", html.EscapeString, `<p>Hi &lt;b&gt;Ada&lt;/b&gt; &amp; &#34;co&#34;</p>`},
		{"attribute", `<a href="{{url}}">`, html.EscapeString, `<a href="https://x.example/u?a=1&amp;b=2">`},
		{"single pass: a value is not expanded", "{{loop}}", nil, "{{name}}"},
		{"literal braces untouched", "{{ name }} {{name}}", nil, `{{ name }} <b>Ada</b> & "co"`},
		{"missing renders empty", "[{{absent}}]", nil, "[]"},
		{"escaped variable is text", `\{{name}} {{name}}`, nil, `{{name}} <b>Ada</b> & "co"`},
		{"escape alone", `\{{`, nil, "{{"},
		{"backslash elsewhere stays", `a\b \{x}`, nil, `a\b \{x}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mailtemplate.Parse(tt.in).Render(vars, tt.escape); got != tt.want {
				t.Errorf("Render(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEscapeShowsTextExactly(t *testing.T) {
	vars := map[string]string{"name": "Ada", "unsubscribe_url": "https://x/u"}
	for _, s := range []string{
		"", "plain", "{{unsubscribe_url}}", "{{name}}{{name}}", "{{{name}}}", "{{{{", `\{{name}}`,
		`\\{{name}}`, `ends with \`, "{", "}}{{", "a{{b", `{{\bf x}}`,
	} {
		tmpl := mailtemplate.Parse(mailtemplate.Escape(s))
		if got := tmpl.Render(vars, nil); got != s {
			t.Errorf("Parse(Escape(%q)) renders %q", s, got)
		}
		if names := tmpl.Names(); len(names) != 0 {
			t.Errorf("Escape(%q) still has variables %v", s, names)
		}
	}
	// Escaped text next to a real variable.
	got := mailtemplate.Parse(mailtemplate.Escape("Paper: {{name}}")+" for {{name}}").Render(vars, nil)
	if want := "Paper: {{name}} for Ada"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"{{a}}", `\{{a}}`, "{{{{", "x{{y}}z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tmpl := mailtemplate.Parse(mailtemplate.Escape(s))
		if got := tmpl.Render(map[string]string{"a": "A"}, nil); got != s {
			t.Errorf("Parse(Escape(%q)) renders %q", s, got)
		}
	})
}

func TestValidVariableName(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, "unsubscribe_url": true, "x9": true, strings.Repeat("a", 64): true,
		"": false, "A": false, "9a": false, "_a": false, "a-b": false, "a b": false, strings.Repeat("a", 65): false,
	} {
		if got := mailtemplate.ValidVariableName(name); got != want {
			t.Errorf("ValidVariableName(%q) = %v, want %v", name, got, want)
		}
	}
}

func FuzzParseTemplate(f *testing.F) {
	for _, seed := range []string{
		"", "Hi {{name}}", "{{a}}{{b}}", "{{{x}}}", "{{ x }}", "{{x", "}}{{", `{{\bf x}}`,
		"{{" + strings.Repeat("a", 65) + "}}", "<p>{{unsubscribe_url}}</p>",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		tmpl := mailtemplate.Parse(in)
		names := tmpl.Names()
		identity := map[string]string{}
		for i, n := range names {
			if !mailtemplate.ValidVariableName(n) {
				t.Fatalf("ParseTemplate(%q) found invalid name %q", in, n)
			}
			if i > 0 && names[i-1] >= n {
				t.Fatalf("ParseTemplate(%q).Names() = %q: not sorted and distinct", in, names)
			}
			if !strings.Contains(in, "{{"+n+"}}") {
				t.Fatalf("ParseTemplate(%q) found %q, which is not in the input", in, n)
			}
			identity[n] = "{{" + n + "}}"
		}
		// Filling every variable with itself gives back the input: nothing
		// is lost, reordered or invented.
		if got := tmpl.Render(identity, nil); got != in {
			t.Fatalf("Render with identity values = %q, want %q", got, in)
		}
		// Values are inserted once, never scanned again.
		marked := map[string]string{}
		for _, n := range names {
			marked[n] = "{{" + n + "}}"
		}
		again := mailtemplate.Parse(tmpl.Render(marked, nil)).Names()
		if diff := cmp.Diff(names, again); diff != "" {
			t.Fatalf("re-parsing the rendering changed the variables (-want +got):\n%s", diff)
		}
	})
}
