package smtpmail

import (
	"bytes"
	"sync"

	"github.com/paperroute/paperroute/services/sender/internal/mailtemplate"
)

// Splicing: a content's bodies are encoded in quoted-printable once, and
// each message only encodes its values. Every literal piece and every value
// is encoded on its own, starting at column 0, and ended with a soft line
// break ("=" CRLF) when it ends mid-line; a decoder drops soft line breaks,
// so the pieces join into exactly the rendered text, and no encoded line
// grows past 76 characters whatever a value holds. Values in the HTML body
// are HTML-escaped first, as mailtemplate.Render does.

// encodedBody is one body of a content, encoded.
type encodedBody struct {
	segs []encodedSeg
	html bool // values are HTML-escaped
}

// encodedSeg is a literal piece encoded, or a variable.
type encodedSeg struct {
	enc     []byte // the literal, encoded
	open    bool   // enc ends mid-line
	varName string // set for a variable
}

func (e *encodedBody) empty() bool { return len(e.segs) == 0 }

func encodeBody(t mailtemplate.Template, html bool) encodedBody {
	e := encodedBody{html: html}
	t.Each(func(text string, isVar bool) {
		if isVar {
			e.segs = append(e.segs, encodedSeg{varName: text})
			return
		}
		var b bytes.Buffer
		qpEncode(&b, text)
		e.segs = append(e.segs, encodedSeg{enc: b.Bytes(), open: !bytes.HasSuffix(b.Bytes(), []byte("\r\n"))})
	})
	return e
}

// write writes the body with vars spliced in.
func (e *encodedBody) write(b *bytes.Buffer, vars map[string]string) {
	last := len(e.segs) - 1
	for i, s := range e.segs {
		open := s.open
		if s.varName == "" {
			b.Write(s.enc)
		} else {
			v := vars[s.varName]
			if e.html {
				v = mailtemplate.EscapeHTML(v)
			}
			start := b.Len()
			qpEncode(b, v)
			open = b.Len() > start && !bytes.HasSuffix(b.Bytes(), []byte("\r\n"))
		}
		if open && i < last {
			b.WriteString("=\r\n")
		}
	}
}

// encodedContent is a content's two bodies, encoded.
type encodedContent struct {
	text, html encodedBody
}

// encodedCacheSize bounds the contents kept encoded; the dispatcher keeps
// about as many compiled contents.
const encodedCacheSize = 64

// encodedCache keeps encoded contents by their compiled template, which
// the dispatcher caches per content id (contents never change).
type encodedCache struct {
	mu sync.Mutex
	m  map[*mailtemplate.Compiled]*encodedContent
}

func (c *encodedCache) get(t *mailtemplate.Compiled) *encodedContent {
	c.mu.Lock()
	e, ok := c.m[t]
	c.mu.Unlock()
	if ok {
		return e
	}
	e = &encodedContent{text: encodeBody(t.Text(), false), html: encodeBody(t.HTML(), true)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= encodedCacheSize {
		c.m = map[*mailtemplate.Compiled]*encodedContent{}
	}
	c.m[t] = e
	return e
}
