package stack_test

import (
	"io"
	"regexp"
	"slices"
	"testing"

	digestv1 "github.com/paperroute/paperroute/api/gen/paperroute/digest/v1"
)

// TestTopicCataloguesAgree checks that the topics a reader can tick on the
// subscriber's sign-up form are exactly the topics the digest ranks by. The
// two services keep their own catalogue (each owns its data); with the
// shipped defaults they must agree, or a reader could pick a topic that never
// matches a paper, or the front page could offer one sign-up refuses.
func TestTopicCataloguesAgree(t *testing.T) {
	w := startFrontWorld(t)
	ctx := ctxT(t)
	res, err := w.dig.ListTopics(ctx, &digestv1.ListTopicsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var ranked []string
	for _, tp := range res.GetTopics() {
		ranked = append(ranked, tp.GetId())
	}
	resp, err := w.http.Get(w.subscriberURL() + "/subscribe")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body := string(b)
	var offered []string
	for _, m := range regexp.MustCompile(`name="topics" value="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		offered = append(offered, m[1])
	}
	slices.Sort(ranked)
	slices.Sort(offered)
	if len(ranked) == 0 || !slices.Equal(ranked, offered) {
		t.Errorf("the sign-up form offers topics %v; the digest ranks by %v", offered, ranked)
	}
}
