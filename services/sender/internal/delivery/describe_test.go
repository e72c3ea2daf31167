package delivery

import (
	"strings"
	"testing"
)

func TestDescribeBoundsAndFlattensErrors(t *testing.T) {
	got := describe(errString("451 try\r\nlater " + strings.Repeat("x", 1000)))
	if strings.ContainsAny(got, "\r\n") || len(got) > maxErrorLen+len("…") {
		t.Errorf("describe = %q (%d bytes)", got, len(got))
	}
}

type errString string

func (e errString) Error() string { return string(e) }
