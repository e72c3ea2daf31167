package mailcatcher

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
)

// Parsed is a message split into what a reader sees.
type Parsed struct {
	Header mail.Header
	// Subject is the decoded Subject header.
	Subject string
	// Text and HTML are the decoded text/plain and text/html parts.
	Text string
	HTML string
	// PartOrder lists the content types of the body parts in order.
	PartOrder []string
}

// Parse decodes a message: headers, and the text and HTML parts of a
// single-part or (nested) multipart body, with base64 and quoted-printable
// transfer encodings undone.
func Parse(data []byte) (*Parsed, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("mailcatcher: parse: %w", err)
	}
	p := &Parsed{Header: msg.Header}
	dec := new(mime.WordDecoder)
	if subj, err := dec.DecodeHeader(msg.Header.Get("Subject")); err == nil {
		p.Subject = subj
	} else {
		p.Subject = msg.Header.Get("Subject")
	}
	if err := p.walk(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body); err != nil {
		return nil, fmt.Errorf("mailcatcher: parse body: %w", err)
	}
	return p, nil
}

func (p *Parsed) walk(contentType, encoding string, body io.Reader) error {
	if contentType == "" {
		contentType = "text/plain"
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return err
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := p.walk(part.Header.Get("Content-Type"), part.Header.Get("Content-Transfer-Encoding"), part); err != nil {
				return err
			}
		}
	}
	var r io.Reader = body
	switch strings.ToLower(encoding) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &newlineStripper{r: body})
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	p.PartOrder = append(p.PartOrder, mediaType)
	switch mediaType {
	case "text/plain":
		p.Text += string(b)
	case "text/html":
		p.HTML += string(b)
	}
	return nil
}

// newlineStripper drops CR and LF so base64 lines decode as one stream.
type newlineStripper struct{ r io.Reader }

func (n *newlineStripper) Read(b []byte) (int, error) {
	for {
		k, err := n.r.Read(b)
		out := 0
		for _, c := range b[:k] {
			if c != '\r' && c != '\n' {
				b[out] = c
				out++
			}
		}
		if out > 0 || err != nil {
			return out, err
		}
	}
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Subject}}</title>
<style>body{font-family:system-ui,sans-serif;margin:0;background:#f4f4f5}
table.h{margin:16px auto;max-width:900px;width:100%;font-size:14px;border-collapse:collapse;background:#fff}
table.h th{text-align:left;color:#555;padding:4px 8px;width:12em;vertical-align:top}table.h td{padding:4px 8px;word-break:break-all}
iframe{display:block;margin:0 auto 16px;width:100%;max-width:900px;height:80vh;border:1px solid #ddd;background:#fff}
pre{max-width:900px;margin:0 auto 32px;white-space:pre-wrap;background:#fff;padding:16px;border:1px solid #ddd}</style></head>
<body><table class="h">{{range .Headers}}<tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>{{end}}</table>
{{if .HTML}}<iframe sandbox srcdoc="{{.HTML}}" title="HTML part"></iframe>{{end}}
{{if .Text}}<pre>{{.Text}}</pre>{{end}}
</body></html>
`))

// BrowsableHTML renders a message as a standalone page: the main headers,
// the HTML part in a sandboxed frame and the text part below it.
func BrowsableHTML(data []byte) ([]byte, error) {
	p, err := Parse(data)
	if err != nil {
		return nil, err
	}
	type header struct{ Name, Value string }
	var headers []header
	for _, name := range []string{"From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"} {
		v := p.Header.Get(name)
		if name == "Subject" {
			v = p.Subject
		}
		if v != "" {
			headers = append(headers, header{name, v})
		}
	}
	var buf bytes.Buffer
	err = pageTmpl.Execute(&buf, map[string]any{
		"Subject": p.Subject, "Headers": headers, "HTML": p.HTML, "Text": p.Text,
	})
	return buf.Bytes(), err
}
