package stack_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
)

// get fetches a page of the digest's HTTP port.
func (w *world) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	resp, err := w.http.Get(w.digestURL() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// splitTopic finds a topic that some but not all of the trending papers
// match, and returns it with the titles in and out of it.
func (w *world) splitTopic(ctx context.Context, t *testing.T) (topic *digestv1.Topic, in, out []string) {
	t.Helper()
	all, err := w.dig.ListTrending(ctx, &digestv1.ListTrendingRequest{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	topics, err := w.dig.ListTopics(ctx, &digestv1.ListTopicsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range topics.GetTopics() {
		r, err := w.dig.ListTrending(ctx, &digestv1.ListTrendingRequest{Limit: 100, Topics: []string{tp.GetId()}})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(r.GetPapers()); n == 0 || n == len(all.GetPapers()) {
			continue
		}
		matched := map[string]bool{}
		for _, p := range r.GetPapers() {
			in = append(in, p.GetPaper().GetTitle())
			matched[p.GetPaper().GetId()] = true
		}
		for _, p := range all.GetPapers() {
			if !matched[p.GetPaper().GetId()] {
				out = append(out, p.GetPaper().GetTitle())
			}
		}
		return tp, in, out
	}
	t.Fatal("no topic splits the sample papers")
	return nil, nil, nil
}

// TestFrontPage reads the front page as a client without JavaScript does.
func TestFrontPage(t *testing.T) {
	w := startFrontWorld(t)
	ctx := ctxT(t)
	resp, body := w.get(t, "/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	top, err := w.dig.ListTrending(ctx, &digestv1.ListTrendingRequest{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	first := top.GetPapers()[0]
	for _, want := range []string{
		"Get trending papers in your email inbox once a day!",
		html.EscapeString(first.GetPaper().GetTitle()),
		html.EscapeString(first.GetPaper().GetAuthors()[0]),
		html.EscapeString(first.GetWhy()),
		`href="https://huggingface.co/papers/` + first.GetPaper().GetId() + `"`,
		`href="https://arxiv.org/abs/` + first.GetPaper().GetId() + `"`,
		// The Subscribe box: the Connect form for the module, the
		// subscriber's own form without JavaScript.
		`data-endpoint="` + w.subscriberURL() + `/paperroute.subscriber.v1.SubscriberService/Subscribe"`,
		`<iframe src="` + w.subscriberURL() + `/subscribe?embed=1"`,
		`<script type="module" src="/static/subscribe.js">`,
		`<label for="sub-email">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the front page lacks %s", want)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src "+w.subscriberURL()) || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy = %q; want nothing but own assets and calls to the subscriber", csp)
	}
	for _, asset := range []string{"/static/subscribe.js", "/static/site.css"} {
		r, b := w.get(t, asset)
		if r.StatusCode != http.StatusOK || len(b) < 100 {
			t.Errorf("GET %s = %d (%d bytes)", asset, r.StatusCode, len(b))
		}
	}
	if r, _ := w.get(t, "/static/"); r.StatusCode == http.StatusOK {
		// A directory listing is harmless but sloppy; the file server
		// lists, so just make sure nothing outside static is reachable.
		if r2, _ := w.get(t, "/static/../site.go"); r2.StatusCode == http.StatusOK {
			t.Error("GET /static/../site.go served a file outside static/")
		}
	}

	t.Run("topic filter", func(t *testing.T) {
		topic, in, out := w.splitTopic(ctx, t)
		resp, body := w.get(t, "/?topic="+url.QueryEscape(topic.GetId()))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /?topic=%s = %d", topic.GetId(), resp.StatusCode)
		}
		if !strings.Contains(body, `aria-current="page">`+html.EscapeString(topic.GetLabel())+`</a>`) {
			t.Errorf("the chip of %q is not marked current", topic.GetLabel())
		}
		for _, title := range in {
			if !strings.Contains(body, html.EscapeString(title)) {
				t.Errorf("filtered page lacks matching paper %q", title)
			}
		}
		for _, title := range out {
			if strings.Contains(body, ">"+html.EscapeString(title)+"</a></h3>") {
				t.Errorf("filtered page shows non-matching paper %q", title)
			}
		}
	})
	t.Run("unknown topic", func(t *testing.T) {
		resp, body := w.get(t, "/?topic=%3Cscript%3E")
		if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "<script>") {
			t.Errorf("GET /?topic=<script> = %d; want 404 without the input echoed", resp.StatusCode)
		}
	})
}

// waitOK polls path on the digest's HTTP port until it answers 200.
func (w *world) waitOK(ctx context.Context, t *testing.T, path string) string {
	t.Helper()
	for {
		resp, body := w.get(t, path)
		if resp.StatusCode == http.StatusOK {
			return body
		}
		select {
		case <-ctx.Done():
			t.Fatalf("GET %s still %d", path, resp.StatusCode)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// todayIDs are the ids of the current daily and weekly editions.
func todayIDs() (daily, weekly string) {
	now := time.Now().UTC()
	y, wk := now.ISOWeek()
	return now.Format(time.DateOnly), fmt.Sprintf("%04d-W%02d", y, wk)
}

// TestEditionsArchive waits for the recorder to store today's editions and
// reads them at their stable URLs.
func TestEditionsArchive(t *testing.T) {
	w := startFrontWorld(t)
	ctx := ctxT(t)
	const reader = "private-reader@example.org"
	if _, err := w.sub.Subscribe(ctx, &subscriberv1.SubscribeRequest{Email: reader, ConsentTextVersion: "v1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.sub.ConfirmSubscription(ctx, &subscriberv1.ConfirmSubscriptionRequest{Token: w.mailLink(ctx, reader, "confirm")}); err != nil {
		t.Fatal(err)
	}
	daily, weekly := todayIDs()
	top, err := w.dig.ListTrending(ctx, &digestv1.ListTrendingRequest{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	title := html.EscapeString(top.GetPapers()[0].GetPaper().GetTitle())
	for _, id := range []string{daily, weekly} {
		body := w.waitOK(ctx, t, "/editions/"+id)
		if !strings.Contains(body, title) {
			t.Errorf("edition %s lacks the top paper %q", id, title)
		}
		if strings.Contains(body, "private-reader") || strings.Contains(body, "token=") {
			t.Errorf("edition %s carries personal data", id)
		}
	}
	_, index := w.get(t, "/editions")
	for _, id := range []string{daily, weekly} {
		if !strings.Contains(index, `href="/editions/`+id+`"`) {
			t.Errorf("/editions does not link %s", id)
		}
	}
	for _, bad := range []string{"2026-02-30", "2026-W54", "2024-W00", "latest", "2026-06-12%2F..", "99999-01-01"} {
		if resp, _ := w.get(t, "/editions/"+bad); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /editions/%s = %d, want 404", bad, resp.StatusCode)
		}
	}
	if resp, _ := w.get(t, "/editions/2001-01-01"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET of a day without an edition = %d, want 404", resp.StatusCode)
	}
	// Tomorrow (UTC) has no edition yet, but a mail dated by a reader's
	// local date may already link it: it shows today's list.
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	if resp, _ := w.get(t, "/editions/"+tomorrow); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		t.Errorf("GET /editions/%s = %d to %q, want 302 to the front page", tomorrow, resp.StatusCode, resp.Header.Get("Location"))
	}
}

// atom mirrors the elements RFC 4287 requires of a feed and its entries.
type atom struct {
	XMLName xml.Name
	ID      []string `xml:"id"`
	Title   []string `xml:"title"`
	Updated []string `xml:"updated"`
	Authors []struct {
		Name string `xml:"name"`
	} `xml:"author"`
	Links   []atomLink `xml:"link"`
	Entries []struct {
		ID      []string `xml:"id"`
		Title   []string `xml:"title"`
		Updated []string `xml:"updated"`
		Authors []struct {
			Name string `xml:"name"`
		} `xml:"author"`
		Links   []atomLink `xml:"link"`
		Content []struct {
			Type string `xml:"type,attr"`
			Body string `xml:",chardata"`
		} `xml:"content"`
		Summary []string `xml:"summary"`
	} `xml:"entry"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr"`
	Href string `xml:"href,attr"`
}

// absoluteIRI reports whether s is an absolute IRI (RFC 4287 §4.2.6).
func absoluteIRI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.IsAbs()
}

// TestAtomFeed validates /feed.atom against the elements RFC 4287 requires:
// atom:feed has exactly one id, title and updated, an author (or one in
// every entry) and SHOULD have a link rel="self"; each atom:entry has
// exactly one id, title and updated, a content or an alternate link, and a
// summary when its content is not inline text; ids are absolute IRIs,
// unique per entry; dates are RFC 3339.
func TestAtomFeed(t *testing.T) {
	w := startFrontWorld(t)
	ctx := ctxT(t)
	daily, weekly := todayIDs()
	w.waitOK(ctx, t, "/editions/"+daily)
	w.waitOK(ctx, t, "/editions/"+weekly)

	resp, body := w.get(t, "/feed.atom")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/atom+xml") {
		t.Fatalf("GET /feed.atom = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var f atom
	if err := xml.Unmarshal([]byte(body), &f); err != nil {
		t.Fatalf("feed is not XML: %v", err)
	}
	const ns = "http://www.w3.org/2005/Atom"
	if f.XMLName.Space != ns || f.XMLName.Local != "feed" {
		t.Fatalf("root element = %v, want {%s}feed", f.XMLName, ns)
	}
	checkDate := func(where, s string) {
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			t.Errorf("%s updated %q is not an RFC 3339 date", where, s)
		}
	}
	if len(f.ID) != 1 || !absoluteIRI(f.ID[0]) || len(f.Title) != 1 || f.Title[0] == "" || len(f.Updated) != 1 {
		t.Fatalf("feed id %v title %v updated %v; want exactly one each, the id an absolute IRI", f.ID, f.Title, f.Updated)
	}
	checkDate("feed", f.Updated[0])
	self := false
	for _, l := range f.Links {
		self = self || (l.Rel == "self" && l.Href == w.digestURL()+"/feed.atom")
	}
	if !self {
		t.Errorf("feed links %v; want rel=self to %s/feed.atom", f.Links, w.digestURL())
	}
	if len(f.Entries) != 2 {
		t.Fatalf("feed has %d entries, want 2 (today's daily and weekly editions)", len(f.Entries))
	}
	ids := map[string]bool{}
	for i, e := range f.Entries {
		where := fmt.Sprintf("entry %d", i)
		if len(e.ID) != 1 || !absoluteIRI(e.ID[0]) || ids[e.ID[0]] {
			t.Errorf("%s id %v; want one absolute IRI, unique", where, e.ID)
			continue
		}
		ids[e.ID[0]] = true
		if len(e.Title) != 1 || e.Title[0] == "" || len(e.Updated) != 1 {
			t.Errorf("%s title %v updated %v; want exactly one each", where, e.Title, e.Updated)
			continue
		}
		checkDate(where, e.Updated[0])
		if len(f.Authors) == 0 && len(e.Authors) == 0 {
			t.Errorf("%s has no author and neither has the feed", where)
		}
		alternate := ""
		for _, l := range e.Links {
			if l.Rel == "alternate" || l.Rel == "" {
				alternate = l.Href
			}
		}
		if len(e.Content) != 1 || e.Content[0].Type != "html" || !strings.Contains(e.Content[0].Body, "<a href=") {
			t.Errorf("%s content %v; want one html content with the papers", where, e.Content)
		}
		if alternate == "" || len(e.Summary) != 1 {
			t.Errorf("%s alternate link %q, %d summaries; want the edition page and a summary", where, alternate, len(e.Summary))
		}
		resp, _ := w.http.Get(alternate)
		if resp != nil {
			resp.Body.Close()
		}
		if resp == nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s alternate link %s does not answer 200", where, alternate)
		}
	}
	for _, want := range []string{w.digestURL() + "/editions/" + daily, w.digestURL() + "/editions/" + weekly} {
		if !ids[want] {
			t.Errorf("feed entry ids %v lack %s", ids, want)
		}
	}
	if len(f.Authors) != 1 || f.Authors[0].Name == "" {
		t.Errorf("feed authors %v; want one with a name", f.Authors)
	}
}
