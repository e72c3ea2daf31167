// Package address parses e-mail addresses the way sender accepts them: a bare
// RFC 5322 addr-spec, nothing more.
//
// The accepted form is deliberately narrower than everything RFC 5322 allows,
// because every address ends up in an SMTP envelope and a To header:
//
//   - no display name, comments, angle brackets or surrounding spaces;
//   - the local part is a dot-atom of ASCII atext (quoted local parts and
//     non-ASCII local parts, which need SMTPUTF8, are refused);
//   - the domain is a host name of at least two labels; internationalised
//     domains are converted to punycode (IDNA2008 lookup rules) and the result
//     is lower-cased; domain literals ([192.0.2.1]) are refused;
//   - the whole address is at most 254 bytes after conversion, the local part
//     at most 64 (RFC 5321 §4.5.3.1).
package address

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Size limits from RFC 5321 §4.5.3.1 (with the 254-byte path limit of the
// RFC 3696 erratum).
const (
	MaxLength      = 254
	maxLocalLength = 64
	maxLabelLength = 63
	maxHostLength  = 253
)

// ErrInvalid matches (errors.Is) every error Parse returns.
var ErrInvalid = errors.New("address: invalid e-mail address")

// Error is what Parse returns for an unacceptable address.
type Error struct {
	// Reason says what is wrong, e.g. "must contain @". It never quotes the
	// input, so it is safe to show to a caller or write to a log.
	Reason string
}

// Error implements error.
func (e *Error) Error() string { return "address: " + e.Reason }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Parse checks that s is a bare addr-spec and returns it normalised: the
// domain in lower-case ASCII (punycode for internationalised domains), the
// local part unchanged. The error says what is wrong in words a caller can
// act on (an *Error); it never echoes the input.
func Parse(s string) (string, error) {
	if s == "" {
		return "", invalid("must not be empty")
	}
	// Bound the work before anything else: an IDN domain never shrinks below
	// half its UTF-8 size, so 4x the limit is generous.
	if len(s) > 4*MaxLength {
		return "", invalid("must be at most %d bytes", MaxLength)
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "", invalid("must contain @")
	}
	local, domain := s[:at], s[at+1:]
	if err := checkLocal(local); err != nil {
		return "", err
	}
	host, err := normalizeDomain(domain)
	if err != nil {
		return "", err
	}
	out := local + "@" + host
	if len(out) > MaxLength {
		return "", invalid("must be at most %d bytes", MaxLength)
	}
	return out, nil
}

// Domain returns the domain part of an address Parse accepted.
func Domain(addr string) string {
	return addr[strings.LastIndexByte(addr, '@')+1:]
}

func checkLocal(local string) error {
	switch {
	case local == "":
		return invalid("needs a local part before @")
	case len(local) > maxLocalLength:
		return invalid("local part must be at most %d bytes", maxLocalLength)
	case local[0] == '.' || local[len(local)-1] == '.':
		return invalid("local part must not start or end with a dot")
	case strings.Contains(local, ".."):
		return invalid("local part must not contain consecutive dots")
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; !isAtext(c) && c != '.' {
			return invalid("local part may only hold letters, digits and !#$%%&'*+-/=?^_`{|}~ (no spaces, quotes or non-ASCII)")
		}
	}
	return nil
}

// isAtext reports whether c is RFC 5322 atext.
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

func normalizeDomain(domain string) (string, error) {
	if domain == "" {
		return "", invalid("needs a domain after @")
	}
	if !utf8.ValidString(domain) {
		return "", invalid("domain must be valid UTF-8")
	}
	if strings.HasPrefix(domain, "[") {
		return "", invalid("domain literals are not accepted")
	}
	// idna maps some code points to ASCII ones (e.g. fullwidth letters, or
	// U+FF0E to '.'), so control characters and separators must be refused
	// before conversion, not only after.
	for _, r := range domain {
		if r < 0x21 || r == 0x7f {
			return "", invalid("domain must not contain spaces or control characters")
		}
	}
	host, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		return "", invalid("domain is not a valid host name")
	}
	host = strings.ToLower(host)
	if len(host) > maxHostLength {
		return "", invalid("domain must be at most %d bytes", maxHostLength)
	}
	labels := strings.Split(host, ".")
	if len(labels) < 2 {
		return "", invalid("domain needs at least two labels (e.g. example.com)")
	}
	for _, label := range labels {
		if err := checkLabel(label); err != nil {
			return "", err
		}
	}
	if isAllDigits(labels[len(labels)-1]) {
		return "", invalid("domain must not end in a numeric label")
	}
	return host, nil
}

func checkLabel(label string) error {
	if label == "" {
		return invalid("domain must not have empty labels")
	}
	if len(label) > maxLabelLength {
		return invalid("domain labels must be at most %d bytes", maxLabelLength)
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		return invalid("domain labels must not start or end with a hyphen")
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return invalid("domain may only hold letters, digits, hyphens and dots")
		}
	}
	return nil
}

func isAllDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func invalid(format string, args ...any) error {
	return &Error{Reason: fmt.Sprintf(format, args...)}
}
