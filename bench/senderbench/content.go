package senderbench

import (
	"fmt"
	"html"
	"strings"

	"github.com/paperroute/paperroute/bench/internal/rawmail"
)

// The benchmark mail: a digest-like two-part message of about 5 KB on the
// wire, with two per-recipient variables (a name and the unsubscribe URL)
// and some non-ASCII text, so the quoted-printable encoding has work to do.
const (
	subjectTemplate = "Today's trending papers — {{name}}"
	fromAddress     = "paperroute <digest@bench.paperroute.invalid>"
	msgIDDomain     = "bench.paperroute.invalid"
)

var papers = []string{
	"Scaling Laws for Sparse Mixture-of-Experts Retrieval",
	"Diffusion Transformers Learn Physics — a Study of Emergent Simulation",
	"Über-efficient Attention: Linear Memory for 1M-token Contexts",
	"Self-Correcting Agents with Verifier Feedback",
	"Tokenizer-free Language Models at Scale",
}

// htmlTemplate and textTemplate are built once.
var htmlTemplate, textTemplate = buildBodies()

func buildBodies() (string, string) {
	var h, t strings.Builder
	h.WriteString(`<!doctype html><html><body style="margin:0;padding:0;background:#f4f4f4">` +
		`<div style="display:none">Five papers for you today</div>` +
		`<table width="600" cellpadding="0" cellspacing="0" style="margin:0 auto;background:#ffffff;font-family:Helvetica,Arial,sans-serif">` +
		`<tr><td style="padding:24px"><h1 style="font-size:20px">Hello {{name}},</h1>`)
	t.WriteString("Hello {{name}},\n\nToday's trending papers:\n\n")
	for i, p := range papers {
		fmt.Fprintf(&h, `<div style="padding:12px 0;border-bottom:1px solid #eeeeee">`+
			`<a href="https://arxiv.org/abs/2611.%05d" style="font-size:16px;color:#1a0dab;text-decoration:none">%s</a>`+
			`<p style="font-size:13px;color:#555555;margin:6px 0">We study how models behave when the data, the compute and the evaluation grow together, and find a simple law that predicts it.</p>`+
			`<span style="font-size:12px;color:#888888">▲ %d · matches: machine learning</span></div>`, 1000+i, html.EscapeString(p), 100+i*7)
		fmt.Fprintf(&t, "%d. %s\n   https://arxiv.org/abs/2611.%05d\n   ▲ %d · matches: machine learning\n   We study how models behave when the data, the compute and the evaluation grow together.\n\n", i+1, p, 1000+i, 100+i*7)
	}
	h.WriteString(`<p style="font-size:12px;color:#888888">You get this because you subscribed to paperroute. ` +
		`<a href="{{unsubscribe_url}}">Unsubscribe</a> · <a href="https://paperroute.invalid/preferences">Preferences</a></p>` +
		`<p style="font-size:12px;color:#888888">paperroute, 1 Example Street, 12345 Example City</p></td></tr></table></body></html>`)
	t.WriteString("Unsubscribe: {{unsubscribe_url}}\nPreferences: https://paperroute.invalid/preferences\n\npaperroute, 1 Example Street, 12345 Example City\n")
	return h.String(), t.String()
}

// recipient is message i's address, name and unsubscribe URL.
func recipient(i int) (addr, name, unsub string) {
	return fmt.Sprintf("reader%d@example.com", i),
		fmt.Sprintf("Reader %d", i),
		fmt.Sprintf("https://paperroute.invalid/unsubscribe?token=tok%024d", i)
}

// renderRaw renders message i for the go-mail baseline, as the sender
// renders it: values HTML-escaped in the HTML body.
func renderRaw(run string) func(i int) rawmail.Message {
	return func(i int) rawmail.Message {
		addr, name, unsub := recipient(i)
		plain := strings.NewReplacer("{{name}}", name, "{{unsubscribe_url}}", unsub)
		escaped := strings.NewReplacer("{{name}}", html.EscapeString(name), "{{unsubscribe_url}}", html.EscapeString(unsub))
		return rawmail.Message{
			To:                 addr,
			Subject:            plain.Replace(subjectTemplate),
			Text:               plain.Replace(textTemplate),
			HTML:               escaped.Replace(htmlTemplate),
			MessageID:          fmt.Sprintf("raw-%s-%d", run, i),
			ListUnsubscribeURL: unsub,
		}
	}
}
