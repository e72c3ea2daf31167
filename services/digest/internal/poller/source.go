package poller

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/paperroute/paperroute/services/digest/internal/library"
)

// Default source endpoints.
const (
	// HFDailyURL is the Hugging Face daily papers API.
	HFDailyURL = "https://huggingface.co/api/daily_papers"
	// ArxivURL is the arXiv API's query endpoint.
	ArxivURL = "https://export.arxiv.org/api/query"
	// ArxivGap is the least time between two requests to the arXiv API: its
	// terms of use ask for no more than one request every 3 seconds.
	ArxivGap = 3 * time.Second
	// arxivPageSize is how many of a category's newest papers one request
	// asks for.
	arxivPageSize = 100
	// MaxDays bounds how many days back the daily list is refreshed.
	MaxDays = 14
)

// Kind is what a source is.
type Kind int

const (
	// KindHFDaily is the Hugging Face daily papers API: one request per day
	// polled, "?date=YYYY-MM-DD".
	KindHFDaily Kind = iota + 1
	// KindArxiv is one arXiv category through the arXiv API, newest first.
	KindArxiv
)

// Source is one configured place papers come from.
type Source struct {
	// Name labels the source in logs and metrics: "hf" or "arxiv:cs.LG".
	Name string
	Kind Kind
	// BaseURL is the endpoint (HFDailyURL, ArxivURL, or a mirror / a test
	// server).
	BaseURL string
	// Category is the arXiv category of a KindArxiv source, e.g. "cs.LG".
	Category string
}

// Format is the document format the source serves.
func (s Source) Format() library.Format {
	if s.Kind == KindArxiv {
		return library.FormatArxivAtom
	}
	return library.FormatHFDailyJSON
}

// Gap is the least time between two requests to this source.
func (s Source) Gap() time.Duration {
	if s.Kind == KindArxiv {
		return ArxivGap
	}
	return 0
}

// URLs returns what to fetch at now: for the daily list, one URL per day
// from today (UTC) back days-1 days; for an arXiv category, its newest
// papers.
func (s Source) URLs(now time.Time, days int) []string {
	if s.Kind == KindArxiv {
		q := url.Values{
			"search_query": {"cat:" + s.Category},
			"sortBy":       {"submittedDate"},
			"sortOrder":    {"descending"},
			"start":        {"0"},
			"max_results":  {fmt.Sprint(arxivPageSize)},
		}
		return []string{s.BaseURL + "?" + q.Encode()}
	}
	urls := make([]string, 0, days)
	today := now.UTC()
	for i := range days {
		day := today.AddDate(0, 0, -i).Format(time.DateOnly)
		urls = append(urls, s.BaseURL+"?"+url.Values{"date": {day}}.Encode())
	}
	return urls
}

var categoryPattern = regexp.MustCompile(`^[a-z-]+(\.[A-Za-z-]+)?$`)

// ParseSources parses DIGEST_SOURCES: a comma-separated list of
//
//	hf              the Hugging Face daily papers API (HFDailyURL)
//	hf:<URL>        a daily papers API at another URL (a mirror, a test server)
//	arxiv:<cat>     an arXiv category through the arXiv API, e.g. arxiv:cs.LG
//	arxiv:<cat>@<URL>  the same through another arXiv API URL
//
// "off" (alone) or an empty list means no sources: the poller does not run.
func ParseSources(spec string) ([]Source, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || spec == "off" {
		return nil, nil
	}
	var sources []Source
	seen := map[string]bool{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		kind, arg, _ := strings.Cut(item, ":")
		var src Source
		switch kind {
		case "hf":
			src = Source{Name: "hf", Kind: KindHFDaily, BaseURL: HFDailyURL}
			if arg != "" {
				if err := checkURL(arg); err != nil {
					return nil, fmt.Errorf("source %q: %w", item, err)
				}
				src.BaseURL = arg
			}
		case "arxiv":
			cat, base, hasURL := strings.Cut(arg, "@")
			if !categoryPattern.MatchString(cat) {
				return nil, fmt.Errorf("source %q: want arxiv:<category>, e.g. arxiv:cs.LG", item)
			}
			src = Source{Name: "arxiv:" + cat, Kind: KindArxiv, BaseURL: ArxivURL, Category: cat}
			if hasURL {
				if err := checkURL(base); err != nil {
					return nil, fmt.Errorf("source %q: %w", item, err)
				}
				src.BaseURL = base
			}
		default:
			return nil, fmt.Errorf("source %q: want hf, hf:<URL>, arxiv:<category> or off", item)
		}
		if seen[src.Name+" "+src.BaseURL] {
			return nil, fmt.Errorf("source %q is listed twice", item)
		}
		seen[src.Name+" "+src.BaseURL] = true
		sources = append(sources, src)
	}
	return sources, nil
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q is not an http(s) URL without query", raw)
	}
	return nil
}
