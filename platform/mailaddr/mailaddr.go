// Package mailaddr parses email addresses strictly: a bare RFC 5322
// dot-atom addr-spec such as name@example.com, nothing more. The subscriber
// service accepts sign-ups and the sender accepts recipients with this one
// parser, so the two can never disagree about what an address is.
//
// Everything a mail system might accept but a subscription form has no use
// for is refused, because each of those forms is a way to smuggle something
// into headers or to register one mailbox under many spellings: display names
// ("Name <a@b>"), quoted local parts, comments, domain literals ([1.2.3.4]),
// whitespace and control characters (CR/LF header injection), non-ASCII local
// parts (they need SMTPUTF8, which paperroute does not use), and more than
// one @. Internationalised domain names are accepted and converted to
// punycode, so the stored address is always plain ASCII.
package mailaddr

import (
	"errors"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Limits from RFC 5321 §4.5.3.1 (and the 254-character path limit that
// follows from the 256-octet reverse-path including its angle brackets).
const (
	// MaxLength is the longest address accepted, in bytes, after the domain
	// is converted to punycode.
	MaxLength = 254
	// MaxLocalLength is the longest local part (before the @), in bytes.
	MaxLocalLength = 64
	// maxDomainLength is the longest domain, in bytes.
	maxDomainLength = 253
	// maxLabelLength is the longest DNS label, in bytes.
	maxLabelLength = 63
	// maxInputLength bounds the work done on hostile input before the
	// (shorter) punycode form can be checked against MaxLength.
	maxInputLength = 1024
)

// Address is a parsed, normalised address.
type Address struct {
	// Addr is the normalised address: the local part as given, the domain
	// lower-cased and in punycode. It is what mail is sent to.
	Addr string
	// Key identifies the mailbox: Addr lower-cased. Two spellings that
	// differ only in case share a Key, so they are one subscriber (nearly
	// every mail provider treats local parts case-insensitively).
	Key string
}

// ErrInvalid matches (errors.Is) every error Parse returns.
var ErrInvalid = errors.New("mailaddr: invalid email address")

// Error is why an input is not an acceptable address. Reason is written for
// the person who typed it and never quotes the input, so it is safe to
// return to a caller or to log.
type Error struct {
	Reason string
}

// Error implements error.
func (e *Error) Error() string { return "mailaddr: " + e.Reason }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func invalid(reason string) error { return &Error{Reason: reason} }

// Parse parses s as a bare addr-spec and returns it normalised.
func Parse(s string) (Address, error) {
	switch {
	case s == "":
		return Address{}, invalid("is required")
	case len(s) > maxInputLength:
		return Address{}, invalid("is too long (at most 254 characters)")
	case !utf8.ValidString(s):
		return Address{}, invalid("is not valid UTF-8")
	case strings.ContainsAny(s, "<>"):
		return Address{}, invalid("must be a bare address like name@example.com, without a display name or angle brackets")
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == '\u2028' || r == '\u2029' {
			return Address{}, invalid("must not contain spaces, line breaks or control characters")
		}
	}
	local, domain, ok := strings.Cut(s, "@")
	switch {
	case !ok:
		return Address{}, invalid("must contain an @, as in name@example.com")
	case strings.Contains(domain, "@"):
		return Address{}, invalid("must contain exactly one @")
	}
	if err := checkLocal(local); err != nil {
		return Address{}, err
	}
	asciiDomain, err := normaliseDomain(domain)
	if err != nil {
		return Address{}, err
	}
	addr := local + "@" + asciiDomain
	if len(addr) > MaxLength {
		return Address{}, invalid("is too long (at most 254 characters)")
	}
	return Address{Addr: addr, Key: strings.ToLower(addr)}, nil
}

// Domain returns the domain of an address Parse returned.
func Domain(addr string) string {
	return addr[strings.LastIndexByte(addr, '@')+1:]
}

// checkLocal accepts a dot-atom local part (RFC 5322 §3.2.3) of ASCII atext.
func checkLocal(local string) error {
	switch {
	case local == "":
		return invalid("needs a name before the @")
	case len(local) > MaxLocalLength:
		return invalid("the part before the @ is too long (at most 64 characters)")
	case strings.HasPrefix(local, `"`):
		return invalid("quoted names before the @ are not accepted")
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return invalid("the part before the @ must not start or end with a dot or contain two dots in a row")
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if c >= utf8.RuneSelf {
			return invalid("the part before the @ may only use ASCII letters, digits and !#$%&'*+-/=?^_`{|}~.")
		}
		if c != '.' && !isAtext(c) {
			return invalid("the part before the @ may only use letters, digits and !#$%&'*+-/=?^_`{|}~.")
		}
	}
	return nil
}

// isAtext reports whether c is an RFC 5322 atext character.
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// normaliseDomain returns domain lower-cased and in punycode, or why it is
// not a usable host name.
func normaliseDomain(domain string) (string, error) {
	switch {
	case domain == "":
		return "", invalid("needs a domain after the @, as in name@example.com")
	case strings.HasPrefix(domain, "["):
		return "", invalid("IP address literals are not accepted; use a domain name")
	case strings.HasSuffix(domain, "."):
		return "", invalid("the domain must not end with a dot")
	}
	// Convert the way a resolver would (UTS #46 mapping: case and width
	// folding, NFC), rejecting labels that are not valid IDNA2008 and
	// bidi-rule violations.
	lookup := idna.New(
		idna.MapForLookup(),
		idna.BidiRule(),
		idna.VerifyDNSLength(true),
		idna.Transitional(false),
	)
	ascii, err := lookup.ToASCII(domain)
	if err != nil {
		return "", invalid("the domain is not a valid domain name")
	}
	ascii = strings.ToLower(ascii)
	if len(ascii) > maxDomainLength {
		return "", invalid("the domain is too long")
	}
	labels := strings.Split(ascii, ".")
	if len(labels) < 2 {
		return "", invalid("the domain needs a dot, as in example.com")
	}
	for _, label := range labels {
		if !validLabel(label) {
			return "", invalid("the domain is not a valid domain name")
		}
	}
	if allDigits(labels[len(labels)-1]) {
		return "", invalid("the domain must end in a top-level domain such as .com, not a number")
	}
	return ascii, nil
}

// validLabel reports whether label is an LDH host name label (RFC 1123).
func validLabel(label string) bool {
	if label == "" || len(label) > maxLabelLength || label[0] == '-' || label[len(label)-1] == '-' {
		return false
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
