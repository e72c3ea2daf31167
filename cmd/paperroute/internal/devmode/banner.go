package devmode

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/paperroute/paperroute/cmd/paperroute/internal/devmode/sample"
	"github.com/paperroute/paperroute/cmd/paperroute/internal/stack"
)

type bannerData struct {
	Addrs          stack.Addrs
	Redis          string
	SMTP           string
	MailDir        string
	AdminToken     string
	AdminTokenPath string
	LogPath        string
	Demo           demoResult
}

var bannerTmpl = template.Must(template.New("banner").Funcs(template.FuncMap{
	"q": func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" },
}).Parse(`
paperroute dev is running.

  subscriber  gRPC {{.Addrs.SubscriberGRPC}}   sign-up form http://{{.Addrs.SubscriberHTTP}}/subscribe
  digest      gRPC {{.Addrs.DigestGRPC}}   http://{{.Addrs.DigestHTTP}}/healthz
  sender      gRPC {{.Addrs.SenderGRPC}}   http://{{.Addrs.SenderHTTP}}/metrics
  redis       {{.Redis}}
  smtp        {{.SMTP}} (catches everything; nothing leaves this machine)
  logs        {{.LogPath}}

{{if .Demo.NothingNew}}No demo digest today: demo@example.com was sent every sample paper on an earlier day,
and a digest never repeats a paper. Remove the dev data directory (./var) to start over.
{{else}}{{if .Demo.SentEarlier}}The demo digest for {{.Demo.Edition}} was already delivered to demo@example.com by an earlier run:{{else}}Delivered the demo digest ({{.Demo.Edition}}, {{.Demo.Imported}} sample papers) to demo@example.com:{{end}}
  {{.Demo.EMLPath}}
  {{.Demo.HTMLPath}}   <- open this in a browser
{{end}}
Admin token (dev only; also in {{.AdminTokenPath}}): {{.AdminToken}}
Try:

  TOKEN=$(cat {{q .AdminTokenPath}})
  {{.Grpcurl}} -plaintext {{.Addrs.SubscriberGRPC}} list
  {{.Grpcurl}} -plaintext -d '{"email":"you@example.com","consent_text_version":"v1"}' {{.Addrs.SubscriberGRPC}} paperroute.subscriber.v1.SubscriberService/Subscribe
  {{.Grpcurl}} -plaintext -H "authorization: Bearer $TOKEN" -d '{"state":"SUBSCRIBER_STATE_ACTIVE"}' {{.Addrs.SubscriberGRPC}} paperroute.subscriber.v1.SubscriberService/ListSubscribers
  printf '{"format":"PAPER_FORMAT_HF_DAILY_JSON","data":"%s"}' "$(base64 -w0 {{.SampleFile}})" | {{.Grpcurl}} -plaintext -H "authorization: Bearer $TOKEN" -d @ {{.Addrs.DigestGRPC}} paperroute.digest.v1.DigestService/ImportPapers
  {{.Grpcurl}} -plaintext -H "authorization: Bearer $TOKEN" -d '{"edition":"{{.Demo.Edition}}"}' {{.Addrs.DigestGRPC}} paperroute.digest.v1.DigestService/RunDigest
  {{.Grpcurl}} -plaintext -H "authorization: Bearer $TOKEN" -d '{"run_id":"<id from RunDigest>"}' {{.Addrs.DigestGRPC}} paperroute.digest.v1.DigestService/GetDigestRun
  {{.Grpcurl}} -plaintext -H "authorization: Bearer $TOKEN" {{.Addrs.SenderGRPC}} paperroute.sender.v1.SenderService/GetQueueStats

(More recipes in docs/operations.md.)
Ctrl-C stops everything.
`))

func printBanner(w io.Writer, d bannerData) {
	// make run installs the pinned grpcurl into ./bin; use it when it is
	// there, so the commands work without a grpcurl on PATH.
	grpcurl := "grpcurl"
	if _, err := os.Stat(filepath.Join("bin", "grpcurl")); err == nil {
		grpcurl = "bin/grpcurl"
	}
	data := struct {
		bannerData
		SampleFile string
		Grpcurl    string
	}{d, sample.File, grpcurl}
	if err := bannerTmpl.Execute(w, data); err != nil {
		fmt.Fprintf(w, "paperroute dev is running (banner failed: %v)\n", err)
	}
}
