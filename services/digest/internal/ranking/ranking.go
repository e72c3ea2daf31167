// Package ranking decides which papers a digest carries and in what order:
// the published trending score, the topic catalogue, BM25 relevance to a
// reader's topics and keywords, and the line each card shows to say why it
// is there. It is pure computation over papers: no storage, no clock of its
// own (callers pass the time).
package ranking
