package mailtemplate

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRenderedSubjectFitsTheHeaderLine(t *testing.T) {
	long := strings.Repeat("ü", 2000) // 4000 bytes, two bytes a rune
	tests := []struct {
		name, subject, value, want string
	}{
		{"short stays", "Digest for {{name}}", "Ada", "Digest for Ada"},
		{"exactly the limit stays", strings.Repeat("s", MaxSubjectBytes-3) + "{{name}}", "abc", strings.Repeat("s", MaxSubjectBytes-3) + "abc"},
		{"long value is cut", "Digest: {{name}}", long, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compile(tt.subject, "", "x").Render(map[string]string{"name": tt.value}).Subject
			if len(got) > MaxSubjectBytes || !utf8.ValidString(got) {
				t.Fatalf("subject is %d bytes (valid UTF-8: %v), want at most %d", len(got), utf8.ValidString(got), MaxSubjectBytes)
			}
			if tt.want != "" && got != tt.want {
				t.Errorf("subject = %q, want %q", got, tt.want)
			}
			if tt.want == "" && (!strings.HasPrefix(got, "Digest: ü") || !strings.HasSuffix(got, "…")) {
				t.Errorf("cut subject = %q…, want the start of the value and an ellipsis", got[:20])
			}
		})
	}
}
