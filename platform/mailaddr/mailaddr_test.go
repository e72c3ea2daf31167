package mailaddr_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/platform/mailaddr"
)

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want mailaddr.Address
	}{
		{"plain", "ada@example.com", mailaddr.Address{Addr: "ada@example.com", Key: "ada@example.com"}},
		{"domain lower-cased, local part kept", "Ada.Lovelace@Example.COM", mailaddr.Address{Addr: "Ada.Lovelace@example.com", Key: "ada.lovelace@example.com"}},
		{"plus tag", "ada+papers@example.com", mailaddr.Address{Addr: "ada+papers@example.com", Key: "ada+papers@example.com"}},
		{"every atext character", "!#$%&'*+-/=?^_`{|}~@example.com", mailaddr.Address{Addr: "!#$%&'*+-/=?^_`{|}~@example.com", Key: "!#$%&'*+-/=?^_`{|}~@example.com"}},
		{"subdomains and digits", "x@mail.2a.example.co.uk", mailaddr.Address{Addr: "x@mail.2a.example.co.uk", Key: "x@mail.2a.example.co.uk"}},
		{"IDN domain to punycode", "hans@bücher.de", mailaddr.Address{Addr: "hans@xn--bcher-kva.de", Key: "hans@xn--bcher-kva.de"}},
		{"IDN upper case folded", "hans@BÜCHER.de", mailaddr.Address{Addr: "hans@xn--bcher-kva.de", Key: "hans@xn--bcher-kva.de"}},
		{"IDN TLD", "a@例え.テスト", mailaddr.Address{Addr: "a@xn--r8jz45g.xn--zckzah", Key: "a@xn--r8jz45g.xn--zckzah"}},
		{"punycode given", "a@xn--bcher-kva.de", mailaddr.Address{Addr: "a@xn--bcher-kva.de", Key: "a@xn--bcher-kva.de"}},
		{"64-char local part", strings.Repeat("l", 64) + "@example.com", mailaddr.Address{Addr: strings.Repeat("l", 64) + "@example.com", Key: strings.Repeat("l", 64) + "@example.com"}},
		{"254 chars", long254(), mailaddr.Address{Addr: long254(), Key: long254()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mailaddr.Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q) = %v, want success", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// long254 is a valid address of exactly MaxLength bytes.
func long254() string {
	local := strings.Repeat("l", 64)
	// 64 + 1 + 189 = 254; the domain is three 61-char labels + ".com".
	label := strings.Repeat("d", 61)
	return local + "@" + label + "." + label + "." + label + ".com"
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"display name", "Ada <ada@example.com>"},
		{"angle brackets only", "<ada@example.com>"},
		{"quoted display name", `"Ada" ada@example.com`},
		{"quoted local part", `"ada lovelace"@example.com`},
		{"quoted local part no space", `"ada"@example.com`},
		{"comment", "ada(comment)@example.com"},
		{"CRLF injection", "ada@example.com\r\nBcc: victim@example.org"},
		{"LF injection", "ada@example.com\nBcc: x@y.z"},
		{"CR in local part", "ad\ra@example.com"},
		{"NUL", "ada\x00@example.com"},
		{"tab", "ada\t@example.com"},
		{"space", "ada @example.com"},
		{"leading space", " ada@example.com"},
		{"DEL", "ada\x7f@example.com"},
		{"C1 control", "ada\u0085@example.com"},
		{"line separator", "ada\u2028@example.com"},
		{"no at", "ada.example.com"},
		{"two ats", "a@b@c"},
		{"two ats with dots", "a@b.com@c.com"},
		{"no local part", "@example.com"},
		{"no domain", "ada@"},
		{"missing TLD", "ada@localhost"},
		{"numeric TLD", "ada@1.2.3.4"},
		{"IP literal", "ada@[127.0.0.1]"},
		{"IPv6 literal", "ada@[IPv6:::1]"},
		{"trailing dot in domain", "ada@example.com."},
		{"leading dot in domain", "ada@.example.com"},
		{"empty label", "ada@example..com"},
		{"label starts with hyphen", "ada@-example.com"},
		{"label ends with hyphen", "ada@example-.com"},
		{"underscore in domain", "ada@ex_ample.com"},
		{"label over 63", "ada@" + strings.Repeat("d", 64) + ".com"},
		{"leading dot in local part", ".ada@example.com"},
		{"trailing dot in local part", "ada.@example.com"},
		{"two dots in local part", "a..da@example.com"},
		{"unicode local part", "jürgen@example.com"},
		{"unicode local part cyrillic", "аda@example.com"},
		{"backslash", `a\b@example.com`},
		{"comma", "a,b@example.com"},
		{"semicolon list", "a@example.com;b@example.com"},
		{"local part over 64", strings.Repeat("l", 65) + "@example.com"},
		{"300-char address", strings.Repeat("a", 60) + "@" + strings.Repeat(strings.Repeat("d", 60)+".", 4) + "com"},
		{"255 chars", "x" + long254()},
		{"huge input", strings.Repeat("a", 100_000) + "@example.com"},
		{"invalid UTF-8", "ada@exa\xffmple.com"},
		{"invalid IDN (bidi)", "a@\u05d0a.com"},
		{"mailto scheme", "mailto:ada@example.com"},
		{"trailing space", "ada@example.com "},
		{"fullwidth at sign", "ada＠example.com"},
		{"ideographic space in domain", "ada@exa\u3000mple.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mailaddr.Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.in, got)
			}
			var aerr *mailaddr.Error
			if !errors.As(err, &aerr) || aerr.Reason == "" {
				t.Fatalf("Parse(%q) error = %#v, want an *mailaddr.Error with a reason", tt.in, err)
			}
			if !errors.Is(err, mailaddr.ErrInvalid) {
				t.Errorf("Parse(%q) error does not match ErrInvalid", tt.in)
			}
			if strings.Contains(aerr.Reason, "\n") || strings.Contains(aerr.Reason, "\r") {
				t.Errorf("reason %q echoes line breaks", aerr.Reason)
			}
		})
	}
}

// FuzzParse checks the invariants of every accepted address: it is ASCII,
// bounded, has one @, parses again to itself, and its key is its lower-case
// form. The seed corpus is in testdata/fuzz/FuzzParse.
func TestDomain(t *testing.T) {
	if got, want := mailaddr.Domain("a@example.com"), "example.com"; got != want {
		t.Errorf("Domain = %q, want %q", got, want)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"ada@example.com", "A@B.CO", "hans@bücher.de", "a@b@c", "Ada <a@b.com>",
		"a@example.com\r\nBcc: x@y.z", `"q"@example.com`, "a@[1.2.3.4]", "a@xn--bcher-kva.de",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := mailaddr.Parse(in)
		if err != nil {
			var aerr *mailaddr.Error
			if !errors.As(err, &aerr) {
				t.Fatalf("Parse(%q) error %v is not an *mailaddr.Error", in, err)
			}
			return
		}
		if len(got.Addr) > mailaddr.MaxLength {
			t.Errorf("Parse(%q) = %q: longer than %d", in, got.Addr, mailaddr.MaxLength)
		}
		if strings.Count(got.Addr, "@") != 1 {
			t.Errorf("Parse(%q) = %q: want exactly one @", in, got.Addr)
		}
		for i := 0; i < len(got.Addr); i++ {
			if c := got.Addr[i]; c <= ' ' || c >= utf8.RuneSelf || strings.IndexByte(`<>"(),;:\[]`, c) >= 0 {
				t.Fatalf("Parse(%q) = %q: contains byte %q", in, got.Addr, c)
			}
		}
		if got.Key != strings.ToLower(got.Addr) {
			t.Errorf("Parse(%q).Key = %q, want lower-case Addr %q", in, got.Key, got.Addr)
		}
		again, err := mailaddr.Parse(got.Addr)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse again: %v", in, got.Addr, err)
		}
		if again != got {
			t.Errorf("Parse is not idempotent: %q → %+v → %+v", in, got, again)
		}
	})
}
