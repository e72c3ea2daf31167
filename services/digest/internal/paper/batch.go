package paper

import (
	"fmt"

	"github.com/paperroute/paperroute/platform/validation"
)

// Batch gathers the papers of one imported document, as every importer
// does it: in document order, an id that occurs more than once keeping the
// position of its first occurrence and the data of its last, and the
// invalid entries reported on field — the first maxProblems by number,
// then how many more — so an import is all or nothing.
type Batch struct {
	field       string
	maxProblems int
	papers      []Paper
	position    map[string]int
	problems    validation.Errors
	failed      int
}

// NewBatch returns an empty batch reporting on field.
func NewBatch(field string, maxProblems int) *Batch {
	return &Batch{field: field, maxProblems: maxProblems, position: map[string]int{}}
}

// Add records entry i of the document: the paper it made, or why it could
// not make one.
func (b *Batch) Add(i int, p Paper, err error) {
	if err != nil {
		b.failed++
		if b.problems.Len() < b.maxProblems {
			b.problems.Add(b.field, fmt.Sprintf("entry %d: %s", i, err))
		}
		return
	}
	if at, seen := b.position[p.ID]; seen {
		b.papers[at] = p
		return
	}
	b.position[p.ID] = len(b.papers)
	b.papers = append(b.papers, p)
}

// Papers returns the papers, or a *validation.Error listing the invalid
// entries when there was any.
func (b *Batch) Papers() ([]Paper, error) {
	if b.failed > b.problems.Len() {
		b.problems.Add(b.field, fmt.Sprintf("and %d more invalid entries", b.failed-b.problems.Len()))
	}
	if err := b.problems.Err(); err != nil {
		return nil, err
	}
	return b.papers, nil
}
