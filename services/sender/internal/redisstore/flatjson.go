package redisstore

import (
	"strings"
	"unicode/utf8"
)

// decodeFlatObject decodes the variables' JSON as the sender writes it, a
// flat object of strings without whitespace ({"name":"Ada","u":"https://…"},
// perhaps with a final newline), without encoding/json's reflection: it is
// read for every message on the delivery path. It reports false for
// anything else — an escape sequence, a control character, invalid UTF-8,
// whitespace, another type — and the caller then uses encoding/json, so
// the result is always what json.Unmarshal would give.
func decodeFlatObject(s string) (map[string]string, bool) {
	s = strings.TrimSuffix(s, "\n")
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, false
	}
	body := s[1 : len(s)-1]
	m := make(map[string]string, strings.Count(body, `":"`))
	for body != "" {
		k, rest, ok := cutString(body)
		if !ok || rest == "" || rest[0] != ':' {
			return nil, false
		}
		v, rest, ok := cutString(rest[1:])
		if !ok {
			return nil, false
		}
		m[k] = v
		switch {
		case rest == "":
		case rest[0] == ',' && len(rest) > 1:
			rest = rest[1:]
		default:
			return nil, false
		}
		body = rest
	}
	return m, true
}

// cutString reads a JSON string without escapes at the start of s.
func cutString(s string) (str, rest string, ok bool) {
	if s == "" || s[0] != '"' {
		return "", "", false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			str = s[1:i]
			return str, s[i+1:], utf8.ValidString(str)
		case c == '\\' || c < 0x20:
			return "", "", false
		}
	}
	return "", "", false
}
