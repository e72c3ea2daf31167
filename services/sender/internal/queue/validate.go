package queue

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/paperroute/paperroute/platform/mailaddr"
	"github.com/paperroute/paperroute/platform/validation"
	"github.com/paperroute/paperroute/services/sender/internal/mailtemplate"
)

// Input limits. Field names in violations are the proto field names.
const (
	// MaxBatch bounds the messages of one Enqueue call.
	MaxBatch = 1000
	// MaxIdempotencyKeyBytes bounds an idempotency key.
	MaxIdempotencyKeyBytes = 200
	// MaxSubjectBytes bounds a subject template, and a subject after its
	// variables are filled in is cut to this length (see render): with
	// "Subject: " in front it stays inside RFC 5322's 998-character line.
	MaxSubjectBytes = mailtemplate.MaxSubjectBytes
	// MaxBodyBytes bounds each of the HTML and text bodies.
	MaxBodyBytes = 1 << 20
	// MaxVariables bounds the variables of one message.
	MaxVariables = 32
	// MaxVariableValueBytes bounds one variable value.
	MaxVariableValueBytes = 2048
	// MaxPauseReasonBytes bounds the reason given to PauseSending.
	MaxPauseReasonBytes = 200
	// MaxUnsubscribeURLBytes bounds list_unsubscribe_url. go-mail writes the
	// List-Unsubscribe header as one unfolded line, and RFC 5322 §2.1.1
	// limits a line to 998 characters: "List-Unsubscribe: <" + URL + ">"
	// must fit, with room to spare.
	MaxUnsubscribeURLBytes = 960
)

// ValidateContent checks a template. Violations name the fields of the
// proto Content message ("subject", "html_body", "text_body").
func ValidateContent(c Content) error {
	var errs validation.Errors
	checkContent(&errs, "", c)
	return errs.Err()
}

func checkContent(errs *validation.Errors, prefix string, c Content) {
	switch {
	case c.Subject == "":
		errs.Add(prefix+"subject", "must not be empty")
	case len(c.Subject) > MaxSubjectBytes:
		errs.Addf(prefix+"subject", "must be at most %d bytes", MaxSubjectBytes)
	case !utf8.ValidString(c.Subject):
		errs.Add(prefix+"subject", "must be valid UTF-8")
	case strings.ContainsFunc(c.Subject, unicode.IsControl):
		errs.Add(prefix+"subject", "must not contain line breaks or other control characters")
	}
	if c.HTML == "" && c.Text == "" {
		errs.Add(prefix+"text_body", "at least one of html_body and text_body is required")
	}
	for _, body := range []struct{ field, value string }{{"html_body", c.HTML}, {"text_body", c.Text}} {
		switch {
		case len(body.value) > MaxBodyBytes:
			errs.Addf(prefix+body.field, "must be at most %d bytes", MaxBodyBytes)
		case !utf8.ValidString(body.value):
			errs.Add(prefix+body.field, "must be valid UTF-8")
		case strings.IndexByte(body.value, 0) >= 0:
			errs.Add(prefix+body.field, "must not contain NUL characters")
		}
	}
}

// checkIdempotencyKey enforces 1..200 bytes of printable ASCII without spaces.
func checkIdempotencyKey(errs *validation.Errors, field, key string) {
	switch {
	case key == "":
		errs.Add(field, "must not be empty")
	case len(key) > MaxIdempotencyKeyBytes:
		errs.Addf(field, "must be at most %d bytes", MaxIdempotencyKeyBytes)
	default:
		for i := 0; i < len(key); i++ {
			if key[i] < 0x21 || key[i] > 0x7e {
				errs.Add(field, "must be printable ASCII without spaces")
				return
			}
		}
	}
}

// checkRecipient parses the address and returns its normalised form.
func checkRecipient(errs *validation.Errors, field, rcpt string) string {
	addr, err := mailaddr.Parse(rcpt)
	if err != nil {
		var aerr *mailaddr.Error
		if errors.As(err, &aerr) {
			errs.Add(field, "not a valid e-mail address: "+aerr.Reason)
		} else {
			errs.Add(field, "not a valid e-mail address")
		}
		return ""
	}
	return addr.Addr
}

// checkVariables checks names and values (not whether the template needs
// them).
func checkVariables(errs *validation.Errors, field string, vars map[string]string) {
	if len(vars) > MaxVariables {
		errs.Addf(field, "at most %d variables are allowed", MaxVariables)
		return
	}
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	slices.Sort(names) // report in a stable order
	for _, name := range names {
		value := vars[name]
		switch {
		case !mailtemplate.ValidVariableName(name):
			errs.Addf(field, "variable name %s must match [a-z][a-z0-9_]{0,63}", quoteShort(name))
		case len(value) > MaxVariableValueBytes:
			errs.Addf(field, "value of %s must be at most %d bytes", name, MaxVariableValueBytes)
		case !utf8.ValidString(value):
			errs.Addf(field, "value of %s must be valid UTF-8", name)
		case strings.ContainsFunc(value, unicode.IsControl):
			errs.Addf(field, "value of %s must not contain line breaks or other control characters", name)
		}
	}
}

// checkMissingVariables reports template variables without a value.
func checkMissingVariables(errs *validation.Errors, field string, needed []string, vars map[string]string) {
	var missing []string
	for _, name := range needed {
		if _, ok := vars[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		errs.Addf(field, "the template uses variables without a value: %s", strings.Join(missing, ", "))
	}
}

// checkUnsubscribeURL enforces an https URL (http only to loopback hosts)
// that go-mail will put into List-Unsubscribe exactly as given.
func checkUnsubscribeURL(errs *validation.Errors, field, raw string) {
	if raw == "" {
		return
	}
	if len(raw) > MaxUnsubscribeURLBytes {
		errs.Addf(field, "must be at most %d bytes", MaxUnsubscribeURLBytes)
		return
	}
	for i := 0; i < len(raw); i++ {
		if !isURLByte(raw[i]) {
			errs.Add(field, "must be a URL of printable ASCII without spaces, quotes or angle brackets (percent-encode the rest)")
			return
		}
	}
	if unescaped, err := url.PathUnescape(raw); err != nil || strings.ContainsAny(unescaped, "\r\n\x00") {
		errs.Add(field, "must not contain encoded line breaks or NUL")
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		errs.Add(field, "must be a valid URL")
	case u.Host == "" || u.Hostname() == "":
		errs.Add(field, "must be an absolute URL with a host")
	case u.User != nil:
		errs.Add(field, "must not contain user information")
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		errs.Add(field, "must use https (http is accepted only for loopback hosts)")
	case u.Scheme != "https" && u.Scheme != "http":
		errs.Add(field, "must use https")
	case u.String() != raw:
		errs.Add(field, "must be in canonical form (as net/url formats it)")
	}
}

// isURLByte accepts RFC 3986 unreserved, reserved and '%' characters.
func isURLByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~:/?#[]@!$&'()*+,;=%", c) >= 0
}

// isLoopbackHost reports whether host is localhost, 127.0.0.0/8 or ::1.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsOneClickURL reports whether a validated list_unsubscribe_url is https,
// i.e. can carry RFC 8058 one-click (the other accepted form is http to a
// loopback host, for local development).
func IsOneClickURL(raw string) bool { return strings.HasPrefix(raw, "https://") }

// quoteShort quotes a caller-supplied string for a description, cut short so
// a hostile value cannot flood the error.
func quoteShort(s string) string {
	const maxLen = 40
	if len(s) > maxLen {
		s = s[:maxLen] + "…"
	}
	return fmt.Sprintf("%q", s)
}
