package ranking

import (
	"math"
	"strings"
	"sync"
	"unicode"

	"github.com/paperroute/paperroute/services/digest/internal/paper"
)

// BM25 parameters and field weights (docs/ranking.md): a phrase in the
// title counts three times one in the abstract; the source's AI keywords
// twice.
const (
	bm25K1      = 1.2
	weightTitle = 3.0
	weightKW    = 2.0
	weightAbs   = 1.0
)

// Tokens splits s into lower-case words of letters and digits, folding a
// plural "s" ("models" → "model"), so phrases and papers compare alike.
func Tokens(s string) []string {
	words := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	for i, w := range words {
		if len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") && !strings.HasSuffix(w, "us") && !strings.HasSuffix(w, "is") {
			words[i] = w[:len(w)-1]
		}
	}
	return words
}

// doc is one paper's fields, tokenised.
type doc struct {
	fields [3][]string // title, keywords, abstract
}

var fieldWeights = [3]float64{weightTitle, weightKW, weightAbs}

// fieldB is BM25's length normalisation per field: titles and abstracts
// the usual 0.75; none for the keyword list, whose length says how many
// keywords the source gave, not how diluted a match is.
var fieldB = [3]float64{0.75, 0, 0.75}

// Index scores papers against phrases with BM25F over title, keywords and
// abstract; corpus statistics (document frequency, average field lengths)
// come from the papers it was built on: the recent window, not all time.
// It is safe for concurrent use and caches each phrase's scores.
type Index struct {
	docs   []doc
	avgLen [3]float64

	mu    sync.Mutex
	cache map[string][]float64
}

// NewIndex indexes papers; scores are reported in the same order.
func NewIndex(papers []paper.Paper) *Index {
	ix := &Index{docs: make([]doc, len(papers)), cache: map[string][]float64{}}
	var total [3]int
	for i, p := range papers {
		d := doc{fields: [3][]string{
			Tokens(p.Title),
			Tokens(strings.Join(p.Keywords, " ; ")),
			Tokens(p.Summary + " " + p.AISummary),
		}}
		for f := range d.fields {
			total[f] += len(d.fields[f])
		}
		ix.docs[i] = d
	}
	for f := range total {
		if len(papers) > 0 {
			ix.avgLen[f] = float64(total[f]) / float64(len(papers))
		}
		if ix.avgLen[f] == 0 {
			ix.avgLen[f] = 1
		}
	}
	return ix
}

// Len is the number of indexed papers.
func (ix *Index) Len() int { return len(ix.docs) }

// Phrase returns each paper's BM25F score for phrase (0: no match). The
// slice is shared: do not modify it.
func (ix *Index) Phrase(phrase string) []float64 {
	key := strings.Join(Tokens(phrase), " ")
	ix.mu.Lock()
	scores, ok := ix.cache[key]
	ix.mu.Unlock()
	if ok {
		return scores
	}
	scores = ix.score(strings.Fields(key))
	ix.mu.Lock()
	ix.cache[key] = scores
	ix.mu.Unlock()
	return scores
}

func (ix *Index) score(q []string) []float64 {
	scores := make([]float64, len(ix.docs))
	if len(q) == 0 {
		return scores
	}
	tf := make([][3]int, len(ix.docs))
	df := 0
	for i, d := range ix.docs {
		any := false
		for f, toks := range d.fields {
			tf[i][f] = count(toks, q)
			any = any || tf[i][f] > 0
		}
		if any {
			df++
		}
	}
	if df == 0 {
		return scores
	}
	n := float64(len(ix.docs))
	idf := math.Log(1 + (n-float64(df)+0.5)/(float64(df)+0.5))
	for i, d := range ix.docs {
		w := 0.0
		for f := range d.fields {
			if tf[i][f] == 0 {
				continue
			}
			norm := 1 - fieldB[f] + fieldB[f]*float64(len(d.fields[f]))/ix.avgLen[f]
			w += fieldWeights[f] * float64(tf[i][f]) / norm
		}
		if w > 0 {
			scores[i] = idf * w * (bm25K1 + 1) / (w + bm25K1)
		}
	}
	return scores
}

// count is how often the token sequence q occurs in toks.
func count(toks, q []string) int {
	n := 0
	for i := 0; i+len(q) <= len(toks); i++ {
		match := true
		for j := range q {
			if toks[i+j] != q[j] {
				match = false
				break
			}
		}
		if match {
			n++
		}
	}
	return n
}
