package mailtemplate

import "html"

// Each calls f for every segment of t in order: literal text (isVar false)
// or the name of a variable (isVar true). It lets a mailer encode the
// literal text of a content once and splice in each message's values.
func (t Template) Each(f func(text string, isVar bool)) {
	for _, s := range t.segments {
		f(s.text, s.isVar)
	}
}

// Empty reports whether the template has no text at all.
func (t Template) Empty() bool { return len(t.segments) == 0 }

// Subject renders the subject alone, cut to MaxSubjectBytes as Render does.
func (c *Compiled) Subject(vars map[string]string) string {
	return truncateSubject(c.subject.Render(vars, nil))
}

// HTML is the HTML body's template; Render escapes its values with
// EscapeHTML.
func (c *Compiled) HTML() Template { return c.html }

// Text is the text body's template; its values are used as they are.
func (c *Compiled) Text() Template { return c.text }

// EscapeHTML is the escaping Render applies to values in the HTML body.
func EscapeHTML(s string) string { return html.EscapeString(s) }
