package delivery

import (
	"sync"

	"github.com/paperroute/paperroute/services/sender/internal/mailtemplate"
	"github.com/paperroute/paperroute/services/sender/internal/queue"
)

type entryKey struct {
	partition int
	lane      queue.Lane
	streamID  string
}

// inflight is the set of entries held here (in a channel, in a worker, or
// read and waiting for a slot).
type inflight struct {
	mu sync.Mutex
	m  map[entryKey]Entry
}

func (f *inflight) add(e Entry) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := entryKey{e.Partition, e.Lane, e.StreamID}
	if _, ok := f.m[k]; ok {
		return false
	}
	f.m[k] = e
	return true
}

func (f *inflight) remove(e Entry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, entryKey{e.Partition, e.Lane, e.StreamID})
}

func (f *inflight) snapshot() []Entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Entry, 0, len(f.m))
	for _, e := range f.m {
		out = append(out, e)
	}
	return out
}

// contentCache keeps recently used compiled templates, evicting the oldest.
type contentCache struct {
	mu    sync.Mutex
	m     map[string]*mailtemplate.Compiled
	order []string
}

func (c *contentCache) get(id string) (*mailtemplate.Compiled, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[id]
	return t, ok
}

func (c *contentCache) put(id string, t *mailtemplate.Compiled) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; ok {
		return
	}
	if len(c.order) >= contentCacheSize {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.m[id] = t
	c.order = append(c.order, id)
}
