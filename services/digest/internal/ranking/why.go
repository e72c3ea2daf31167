package ranking

import (
	"strconv"
	"strings"

	"github.com/paperroute/paperroute/services/digest/internal/paper"
)

// Why is the line a card shows to say why its paper is in the digest: the
// paper's counts and, for a paper picked for the reader, what it matched,
// e.g. "▲ 118 · 12 comments · ★ 40 on GitHub · matches: diffusion models".
func Why(p paper.Paper, matches []string) string {
	s := "▲ " + strconv.Itoa(p.Upvotes)
	if p.Comments > 0 {
		s += " · " + strconv.Itoa(p.Comments) + " " + plural(p.Comments, "comment", "comments")
	}
	if p.GitHubStars > 0 {
		s += " · ★ " + strconv.Itoa(p.GitHubStars) + " on GitHub"
	}
	if len(matches) > 0 {
		s += " · matches: " + strings.Join(matches, ", ")
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
