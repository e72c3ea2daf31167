package address_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/paperroute/paperroute/services/sender/internal/address"
)

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "reader@example.com", "reader@example.com"},
		{"domain lower-cased, local part kept", "Reader.Name@Example.COM", "Reader.Name@example.com"},
		{"plus and dots", "a.b+digest@mail.example.org", "a.b+digest@mail.example.org"},
		{"all atext specials", "!#$%&'*+-/=?^_`{|}~@example.com", "!#$%&'*+-/=?^_`{|}~@example.com"},
		{"IDN domain to punycode", "anna@bücher.example", "anna@xn--bcher-kva.example"},
		{"IDN upper-case mapped", "anna@BÜCHER.example", "anna@xn--bcher-kva.example"},
		{"punycode domain kept", "anna@xn--bcher-kva.example", "anna@xn--bcher-kva.example"},
		{"hyphen and digits in labels", "x@a-1.b2.example", "x@a-1.b2.example"},
		{"local part of 64 bytes", strings.Repeat("l", 64) + "@example.com", strings.Repeat("l", 64) + "@example.com"},
		{"254 bytes", strings.Repeat("l", 64) + "@" + longDomain(254-65), strings.Repeat("l", 64) + "@" + longDomain(254-65)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := address.Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q) = %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"empty", ""},
		{"no at", "reader.example.com"},
		{"no local part", "@example.com"},
		{"no domain", "reader@"},
		{"display name", "Reader <reader@example.com>"},
		{"angle brackets", "<reader@example.com>"},
		{"leading space", " reader@example.com"},
		{"trailing space", "reader@example.com "},
		{"space inside", "rea der@example.com"},
		{"CRLF in local part", "reader\r\nBcc: victim@example.com@example.com"},
		{"CRLF after domain", "reader@example.com\r\nBcc: victim@example.com"},
		{"LF in domain", "reader@exa\nmple.com"},
		{"NUL", "reader\x00@example.com"},
		{"tab", "reader@example.com\t"},
		{"two at signs", "a@b@example.com"},
		{"quoted local part", `"a b"@example.com`},
		{"comment", "reader(comment)@example.com"},
		{"leading dot", ".reader@example.com"},
		{"trailing dot in local", "reader.@example.com"},
		{"double dot", "re..ader@example.com"},
		{"non-ASCII local part", "jürgen@example.com"},
		{"single-label domain", "reader@localhost"},
		{"domain literal", "reader@[192.0.2.1]"},
		{"numeric TLD", "reader@192.0.2.1"},
		{"empty label", "reader@example..com"},
		{"trailing dot domain", "reader@example.com."},
		{"hyphen at label start", "reader@-example.com"},
		{"underscore in domain", "reader@ex_ample.com"},
		{"label of 64 bytes", "reader@" + strings.Repeat("a", 64) + ".com"},
		{"local part of 65 bytes", strings.Repeat("l", 65) + "@example.com"},
		{"255 bytes", strings.Repeat("l", 64) + "@" + longDomain(255-65)},
		{"huge", strings.Repeat("a", 1<<20) + "@example.com"},
		{"fullwidth at sign", "reader＠example.com"},
		{"ideographic full stop used to smuggle a space", "reader@exa\u3000mple.com"},
		{"invalid UTF-8", "reader@exa\xffmple.com"},
		{"bidi domain mix", "reader@a\u05d0.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := address.Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want an error", tt.in, got)
			}
			if !errors.Is(err, address.ErrInvalid) {
				t.Errorf("Parse(%q) error %v does not match ErrInvalid", tt.in, err)
			}
			var aerr *address.Error
			if !errors.As(err, &aerr) || aerr.Reason == "" {
				t.Errorf("Parse(%q) error %v has no reason", tt.in, err)
			}
		})
	}
}

func TestDomain(t *testing.T) {
	if got, want := address.Domain("a@example.com"), "example.com"; got != want {
		t.Errorf("Domain = %q, want %q", got, want)
	}
}

// longDomain returns a valid host name of exactly n (>= 3) bytes.
func longDomain(n int) string {
	s := "com"
	for len(s) < n {
		rest := n - len(s) - 1 // room for a label after the dot
		l := min(61, rest)
		if rest-l == 1 { // a lone byte cannot be a label plus its dot
			l--
		}
		s = strings.Repeat("a", l) + "." + s
	}
	return s
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"reader@example.com", "Reader@Example.COM", "anna@bücher.example", "a@b@c.d",
		"\"q\"@example.com", "a@[1.2.3.4]", "a@example.com\r\nBcc: x@y.z", "a@ｅxample.com",
		"a@xn--bcher-kva.example", "a@-x.com", "a@x..com", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := address.Parse(in)
		if err != nil {
			if !errors.Is(err, address.ErrInvalid) {
				t.Fatalf("Parse(%q) error %v does not match ErrInvalid", in, err)
			}
			return
		}
		if len(got) > address.MaxLength {
			t.Fatalf("Parse(%q) = %q: %d bytes", in, got, len(got))
		}
		for i := 0; i < len(got); i++ {
			if c := got[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == '(' || c == ')' || c == ',' || c == ';' || c == '\\' {
				t.Fatalf("Parse(%q) = %q holds %q", in, got, c)
			}
		}
		if strings.Count(got, "@") != 1 {
			t.Fatalf("Parse(%q) = %q: want exactly one @", in, got)
		}
		again, err := address.Parse(got)
		if err != nil || again != got {
			t.Fatalf("Parse(Parse(%q)) = %q, %v; want %q (idempotent)", in, again, err, got)
		}
	})
}
