package logging

import (
	"bytes"
	"sync"
)

// Buffer is an io.Writer, safe for concurrent use, that keeps everything
// written to it: tests give it to a running service's logger (or stdout)
// and read it back while the service still writes.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
