package paper_test

import (
	"testing"

	"github.com/paperroute/paperroute/services/digest/internal/paper"
)

func TestNormalizeID(t *testing.T) {
	tests := []struct {
		raw    string
		want   string
		wantOK bool
	}{
		{"2606.13681", "2606.13681", true},
		{"2606.13681v2", "2606.13681", true},
		{"0704.0001", "0704.0001", true},
		{"hep-th/9901001", "hep-th/9901001", true},
		{"math.GT/0309136v1", "math.GT/0309136", true},
		{"cond-mat/0102536", "cond-mat/0102536", true},
		{"", "", false},
		{"abc", "", false},
		{"2606.136", "", false},
		{"2606.136812", "", false},
		{"26061.3681", "", false},
		{" 2606.13681", "", false},
		{"2606.13681\n", "", false},
		{"hep-th/990100", "", false},
		{"../2606.13681", "", false},
		{"HEP-TH/9901001", "", false},
		{"2606.13681vv2", "", false},
	}
	for _, tt := range tests {
		got, ok := paper.NormalizeID(tt.raw)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("NormalizeID(%q) = %q, %v; want %q, %v", tt.raw, got, ok, tt.want, tt.wantOK)
		}
		if ok && !paper.ValidID(got) {
			t.Errorf("ValidID(%q) = false for a normalised id", got)
		}
	}
	if paper.ValidID("2606.13681v2") {
		t.Error("ValidID accepts a versioned id; stored ids have no version")
	}
}

func TestCleanText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"  a  b\t\nc  ", "a b c"},
		{"a\u00a0\u2003b", "a b"},
		{"a\x00b\x1bc\u0085d", "abc d"},
		{"left\u202eright\u2066", "leftright"},
		{"\u200bzero\ufeffwidth", "zerowidth"},
		{"日本語 テキスト", "日本語 テキスト"},
	}
	for _, tt := range tests {
		if got := paper.CleanText(tt.in); got != tt.want {
			t.Errorf("CleanText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestURL(t *testing.T) {
	p := paper.Paper{ID: "2606.13681"}
	if got, want := p.URL(), "https://huggingface.co/papers/2606.13681"; got != want {
		t.Errorf("URL() = %q, want %q", got, want)
	}
}
