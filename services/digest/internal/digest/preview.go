package digest

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/paperroute/paperroute/platform/validation"

	"github.com/paperroute/paperroute/services/digest/internal/paper"
	"github.com/paperroute/paperroute/services/digest/internal/ranking"
	"github.com/paperroute/paperroute/services/digest/internal/schedule"
)

// Bounds of what readers ask for (the subscriber service enforces the same
// on the preferences it stores).
const (
	MaxTopics       = 50
	MaxKeywords     = 20
	MaxKeywordRunes = 60
	// DefaultTrendingLimit and MaxTrendingLimit bound ListTrending.
	DefaultTrendingLimit = 20
	MaxTrendingLimit     = 100
	// MaxTrendingWindow bounds ListTrending's window.
	MaxTrendingWindow = 30 * 24 * time.Hour
)

// Topics returns the topic catalogue.
func (s *Service) Topics() []ranking.Topic { return s.cfg.Catalogue.Topics() }

// checkTopics validates topic ids against the catalogue.
func (s *Service) checkTopics(verr *validation.Errors, field string, topics []string) {
	if len(topics) > MaxTopics {
		verr.Addf(field, "at most %d topics", MaxTopics)
		return
	}
	for i, t := range topics {
		if _, ok := s.cfg.Catalogue.Lookup(t); !ok {
			verr.Addf(fmt.Sprintf("%s[%d]", field, i), "%q is not a topic id from ListTopics", shorten(t, 40))
		}
	}
}

// Trending returns up to limit papers featured within window before now,
// best trending score first, each with its why line; only those matching
// one of topics when topics are given.
func (s *Service) Trending(ctx context.Context, window time.Duration, limit int, topics []string) ([]ranking.Pick, []float64, error) {
	var verr validation.Errors
	switch {
	case window < 0 || window > MaxTrendingWindow:
		verr.Addf("window", "must be between 0 (the default, %v) and %v", s.cfg.Ranking.Window, MaxTrendingWindow)
	case window == 0:
		window = s.cfg.Ranking.Window
	}
	switch {
	case limit < 0:
		verr.Add("limit", "must not be negative")
	case limit == 0:
		limit = DefaultTrendingLimit
	case limit > MaxTrendingLimit:
		limit = MaxTrendingLimit
	}
	s.checkTopics(&verr, "topics", topics)
	if err := verr.Err(); err != nil {
		return nil, nil, err
	}
	now := s.now().UTC()
	papers, err := s.cfg.Papers.WindowPapers(ctx, now.Add(-window), now.Add(time.Hour))
	if err != nil {
		return nil, nil, fmt.Errorf("digest: trending: %w", err)
	}
	params := s.cfg.Ranking
	params.Window = window
	scored := ranking.NewRanker(params, s.cfg.Catalogue, papers, now).Matching(topics)
	scored = scored[:min(limit, len(scored))]
	picks := make([]ranking.Pick, len(scored))
	scores := make([]float64, len(scored))
	for i, sc := range scored {
		picks[i] = ranking.Pick{Paper: sc.Paper, Why: ranking.Why(sc.Paper, nil)}
		scores[i] = sc.Score
	}
	return picks, scores, nil
}

// PreviewPrefs are the preferences a preview is for.
type PreviewPrefs struct {
	Topics   []string
	Keywords []string
	Weekly   bool

	// alreadySent are papers left out as sent before (PreviewSubscriber).
	alreadySent map[string]bool
}

// Preview is a rendered digest that is not sent, with its papers.
type Preview struct {
	Rendered
	PaperIDs []string
}

// Placeholder links of a preview: a preview is shown, not sent, and must
// not carry anyone's real links.
const (
	previewUnsubscribeURL = "https://paperroute.invalid/unsubscribe"
	previewManageURL      = "https://paperroute.invalid/preferences"
)

// PreviewSubscriber renders the digest that subscriber would get now, by
// their preferences and without the papers already sent to them: the
// subject, HTML and text of the next edition, with placeholder links.
func (s *Service) PreviewSubscriber(ctx context.Context, subscriberID string) (Preview, error) {
	if subscriberID == "" || len(subscriberID) > 64 {
		return Preview{}, validation.Field("subscriber_id", "must be a subscriber id (at most 64 characters)")
	}
	if s.cfg.Preferences == nil {
		return Preview{}, fmt.Errorf("digest: preview for %s: %w", subscriberID, ErrSubscriberNotFound)
	}
	prefs, err := s.cfg.Preferences.Preferences(ctx, subscriberID)
	if err != nil {
		return Preview{}, fmt.Errorf("digest: preview for %s: %w", subscriberID, err)
	}
	since := s.now().UTC().Add(-s.cfg.SentMemory)
	sent, err := s.cfg.Sent.SentPapers(ctx, []string{subscriberID}, nil, since)
	if err != nil {
		return Preview{}, fmt.Errorf("digest: preview for %s: %w", subscriberID, err)
	}
	prefs.alreadySent = sent[subscriberID]
	return s.PreviewDigest(ctx, prefs)
}

// PreviewDigest renders the digest a reader with prefs would get now
// (nothing excluded as already sent: a preview is for a new reader).
func (s *Service) PreviewDigest(ctx context.Context, prefs PreviewPrefs) (Preview, error) {
	var verr validation.Errors
	s.checkTopics(&verr, "preferences.topics", prefs.Topics)
	if len(prefs.Keywords) > MaxKeywords {
		verr.Addf("preferences.keywords", "at most %d keywords", MaxKeywords)
	}
	for i, k := range prefs.Keywords {
		if n := utf8.RuneCountInString(k); n > MaxKeywordRunes || len(ranking.Tokens(k)) == 0 || paper.CleanText(k) != k {
			verr.Addf(fmt.Sprintf("preferences.keywords[%d]", i), "must be 1..%d characters of one line holding a word", MaxKeywordRunes)
		}
	}
	if err := verr.Err(); err != nil {
		return Preview{}, err
	}
	now := s.now().UTC()
	a := &assembly{
		run:      Run{Slot: schedule.SlotStart(now), DryRun: true},
		now:      now,
		rankers:  map[bool]*ranking.Ranker{},
		contents: map[string]content{},
	}
	r, err := s.ranker(ctx, a, prefs.Weekly)
	if err != nil {
		return Preview{}, fmt.Errorf("digest: preview: %w", err)
	}
	picks := r.Pick(ranking.Reader{Topics: prefs.Topics, Keywords: prefs.Keywords}, func(id string) bool { return prefs.alreadySent[id] }, s.cfg.PapersPerEdition)
	if len(picks) == 0 {
		return Preview{}, ErrNothingToPreview
	}
	ed := Edition{Date: now.Truncate(24 * time.Hour), Weekly: prefs.Weekly, Cards: make([]Card, len(picks))}
	for i, p := range picks {
		ed.Cards[i] = Card{Paper: p.Paper, Why: p.Why, ForYou: p.ForYou}
	}
	msg, err := s.cfg.Renderer.Render(ed)
	if err != nil {
		return Preview{}, fmt.Errorf("digest: preview: %w", err)
	}
	fill := strings.NewReplacer("{{"+VarUnsubscribeURL+"}}", previewUnsubscribeURL, "{{"+VarManageURL+"}}", previewManageURL)
	out := Preview{Rendered: msg}
	out.Subject, out.HTML, out.Text = fill.Replace(msg.Subject), fill.Replace(msg.HTML), fill.Replace(msg.Text)
	for _, p := range picks[:msg.Cards] {
		out.PaperIDs = append(out.PaperIDs, p.Paper.ID)
	}
	return out, nil
}
