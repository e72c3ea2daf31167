package digest

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paperroute/paperroute/services/digest/internal/ranking"
)

// picked is what Pick and content gave one reader profile.
type picked struct {
	ct      content
	nothing bool // nothing new qualifies: the reader is skipped
}

// maxPicked bounds the memory of a run's picks; past it, readers are
// picked one by one.
const maxPicked = 50_000

// pickKey is what decides a reader's digest in a run: the edition's date
// and kind, the reader's topics and keywords (in their order, which the
// why lines show), and which of the window's papers they were sent
// before (papers outside the window cannot be picked). Each part is
// length-prefixed, so no text can pass for another part.
func pickKey(r *ranking.Ranker, j job, seen map[string]bool) string {
	var b strings.Builder
	b.WriteString(j.date.Format(time.DateOnly))
	if j.weekly {
		b.WriteString("|w")
	}
	add := func(tag string, items []string) {
		b.WriteString(tag)
		for _, it := range items {
			b.WriteString(strconv.Itoa(len(it)))
			b.WriteByte(':')
			b.WriteString(it)
		}
	}
	add("|t", j.sub.Topics)
	add("|k", j.sub.Keywords)
	var ids []string
	for id := range seen {
		if r.InWindow(id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	add("|s", ids)
	return b.String()
}

// lookupPicked returns what an earlier reader with key got, if any.
func (a *assembly) lookupPicked(key string) (picked, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.picked[key]
	return p, ok
}

// rememberPicked remembers what a reader with key got, while there is room.
func (a *assembly) rememberPicked(key string, p picked) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.picked) < maxPicked {
		a.picked[key] = p
	}
}

// content is one rendering, stored in the sender (id empty in a dry run).
type content struct {
	id       string
	paperIDs []string
}
