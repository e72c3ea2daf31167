// Package mailtemplate is sender's {{variable}} engine: it finds the
// variables of a subject or body and fills them in per recipient, escaping
// values in HTML bodies. It never fails: text that is not a variable is
// literal.
package mailtemplate

import (
	"html"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxVariableNameLength bounds a variable name.
const MaxVariableNameLength = 64

// MaxSubjectBytes bounds a rendered subject: with "Subject: " in front it
// stays inside RFC 5322's 998-character line. Longer renderings are cut.
const MaxSubjectBytes = 900

// Template is a subject or body split into literal text and {{variables}}.
//
// A variable is exactly "{{" name "}}" with name matching
// [a-z][a-z0-9_]{0,63}; anything else between braces ("{{ name }}",
// "{{Name}}", LaTeX's "{{\bf x}}") is literal text. Substitution is a single
// pass: a value that itself looks like "{{x}}" is not expanded again.
//
// A backslash right before "{{" escapes it: "\{{name}}" is the literal text
// "{{name}}" (the backslash is dropped). Escape writes untrusted text into
// a template this way, so it shows exactly as written.
type Template struct {
	segments []segment
}

type segment struct {
	text  string // literal text, or the variable name when isVar
	isVar bool
}

// Parse splits s into its segments. It never fails: text that is not
// a variable is literal.
func Parse(s string) Template {
	var t Template
	lit := 0 // start of the pending literal
	for i := 0; i+3 <= len(s); {
		open := strings.Index(s[i:], "{{")
		if open < 0 {
			break
		}
		open += i
		if open > 0 && s[open-1] == '\\' {
			// Escaped: the text up to the backslash, then "{{" as text.
			if open-1 > lit {
				t.segments = append(t.segments, segment{text: s[lit : open-1]})
			}
			t.segments = append(t.segments, segment{text: "{{"})
			i = open + 2
			lit = i
			continue
		}
		name, ok := scanName(s[open+2:])
		if !ok {
			i = open + 1
			continue
		}
		if open > lit {
			t.segments = append(t.segments, segment{text: s[lit:open]})
		}
		t.segments = append(t.segments, segment{text: name, isVar: true})
		i = open + 2 + len(name) + 2
		lit = i
	}
	if lit < len(s) {
		t.segments = append(t.segments, segment{text: s[lit:]})
	}
	return t
}

// Escape returns s written as template text that renders as s exactly:
// every "{{" gets a backslash in front, so no part of s is read as a
// variable (or as an escape).
func Escape(s string) string {
	return strings.ReplaceAll(s, "{{", "\\{{")
}

// scanName reads a variable name followed by "}}" at the start of s.
func scanName(s string) (string, bool) {
	n := 0
	for n < len(s) && n <= MaxVariableNameLength && isNameByte(s[n], n == 0) {
		n++
	}
	if n == 0 || n > MaxVariableNameLength || !strings.HasPrefix(s[n:], "}}") {
		return "", false
	}
	return s[:n], true
}

func isNameByte(c byte, first bool) bool {
	if 'a' <= c && c <= 'z' {
		return true
	}
	return !first && ('0' <= c && c <= '9' || c == '_')
}

// ValidVariableName reports whether name may be used as a {{variable}}.
func ValidVariableName(name string) bool {
	if name == "" || len(name) > MaxVariableNameLength {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isNameByte(name[i], i == 0) {
			return false
		}
	}
	return true
}

// Names lists the distinct variables the template uses, sorted.
func (t Template) Names() []string {
	var names []string
	for _, s := range t.segments {
		if s.isVar {
			names = append(names, s.text)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Render fills the variables from vars. escape, if not nil, is applied to
// every value (html.EscapeString for HTML bodies). A variable missing from
// vars renders as the empty string; Enqueue refuses such messages, so this
// only happens for content whose variables were checked.
func (t Template) Render(vars map[string]string, escape func(string) string) string {
	var b strings.Builder
	for _, s := range t.segments {
		switch {
		case !s.isVar:
			b.WriteString(s.text)
		case escape != nil:
			b.WriteString(escape(vars[s.text]))
		default:
			b.WriteString(vars[s.text])
		}
	}
	return b.String()
}

// Rendered is a Content with the variables of one message filled in.
type Rendered struct {
	Subject string
	HTML    string
	Text    string
}

// Compiled is a subject, HTML body and text body parsed once and rendered
// for many messages.
type Compiled struct {
	subject, html, text Template
}

// Compile parses the three templates of one content.
func Compile(subject, html, text string) *Compiled {
	return &Compiled{subject: Parse(subject), html: Parse(html), text: Parse(text)}
}

// Names lists the distinct variables the three templates use, sorted.
func (c *Compiled) Names() []string {
	return mergeNames(c.subject.Names(), c.html.Names(), c.text.Names())
}

// Render fills in vars; values are HTML-escaped in the HTML body only. The
// subject and text body are plain text, and values hold no control
// characters (validated at Enqueue by the queue package), so nothing can break out of a header.
// Values can make a subject longer than its template; it is cut to
// MaxSubjectBytes so the header line stays within RFC 5322's limit.
func (c *Compiled) Render(vars map[string]string) Rendered {
	return Rendered{
		Subject: truncateSubject(c.subject.Render(vars, nil)),
		HTML:    c.html.Render(vars, html.EscapeString),
		Text:    c.text.Render(vars, nil),
	}
}

// truncateSubject cuts s to at most MaxSubjectBytes at a rune boundary,
// ending it with "…" when something was cut.
func truncateSubject(s string) string {
	if len(s) <= MaxSubjectBytes {
		return s
	}
	const ellipsis = "…"
	cut := MaxSubjectBytes - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

func mergeNames(lists ...[]string) []string {
	var all []string
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}
