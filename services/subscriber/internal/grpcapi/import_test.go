package grpcapi_test

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
)

// importFile streams data in chunks of chunk bytes.
func (h *harness) importFile(t *testing.T, first *subscriberv1.ImportSubscribersRequest, data string, chunk int) (*subscriberv1.ImportSubscribersResponse, error) {
	t.Helper()
	stream, err := h.client.ImportSubscribers(admin())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i == 0 || i < len(data); i += chunk {
		msg := &subscriberv1.ImportSubscribersRequest{}
		if i == 0 {
			msg = first
		}
		msg.Data = []byte(data[i:min(i+chunk, len(data))])
		if err := stream.Send(msg); err != nil {
			t.Fatal(err)
		}
	}
	return stream.CloseAndRecv()
}

func TestImportListmonkCSV(t *testing.T) {
	h := start(t)
	h.inState(t, "suppressed@example.com", stateSuppressed)
	data, err := os.ReadFile("testdata/listmonk-export.csv")
	if err != nil {
		t.Fatal(err)
	}
	first := &subscriberv1.ImportSubscribersRequest{
		Format: subscriberv1.ImportFormat_IMPORT_FORMAT_CSV, Source: "listmonk", DefaultConsentTextVersion: "listmonk-2025",
	}
	res, err := h.importFile(t, first, string(data), 100) // small chunks: rows span messages
	if err != nil {
		t.Fatal(err)
	}
	want := &subscriberv1.ImportSubscribersResponse{
		Rows: 5, ImportedActive: 2, Rejected: 3,
		Errors: []*subscriberv1.ImportRowError{
			{Line: 4, Field: "status", Reason: "the source marks the address blocklisted; not imported"},
			{Line: 5, Field: "email"},
			{Line: 6, Field: "email"},
		},
	}
	if diff := cmp.Diff(want, res, protocmp.Transform(), protocmp.IgnoreFields(&subscriberv1.ImportRowError{}, "reason"),
		protocmp.SortRepeated(func(a, b *subscriberv1.ImportRowError) bool { return a.GetLine() < b.GetLine() })); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	ada := h.get(t, "ada@example.com")
	if ada.GetState() != stateActive || ada.GetConsent().GetConsentTextVersion() != "listmonk-2025" ||
		ada.GetConsent().GetSource() != "import:listmonk" || ada.GetConsent().GetSignupTime().AsTime().Format("2006-01-02 15:04") != "2025-03-01 10:15" {
		t.Errorf("ada = %v", ada)
	}
	if n := len(h.Sender.Mails()); n != 1 { // only the suppressed set-up's confirmation
		t.Errorf("%d mails; an import with evidence sends none", n)
	}

	// Re-running the same file changes nothing.
	before := h.Dump(t)
	res, err = h.importFile(t, first, string(data), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if res.GetImportedActive() != 0 || res.GetExisting() != 2 || res.GetRejected() != 3 {
		t.Errorf("second run = %v, want 2 existing, 3 rejected", res)
	}
	if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
		t.Errorf("re-run changed Redis (-before +after):\n%s", diff)
	}
}

func TestImportJSONLinesWithoutEvidenceInvites(t *testing.T) {
	h := start(t)
	h.inState(t, "suppressed@example.com", stateSuppressed)
	data := strings.Join([]string{
		`{"email":"new@example.com","topics":["llm"],"timezone":"Asia/Kolkata","delivery_hour":8}`,
		`{"email":"proof@example.com","consent_text_version":"v3","consent_time":"2025-01-02T03:04:05Z","topics":["rl"]}`,
		`{"email":"suppressed@example.com","consent_text_version":"v3","consent_time":"2025-01-02T03:04:05Z"}`,
		`{"email":"bad@example.com","topics":["astrology"]}`,
		`not json`,
		``,
	}, "\n")
	res, err := h.importFile(t, &subscriberv1.ImportSubscribersRequest{Format: subscriberv1.ImportFormat_IMPORT_FORMAT_JSON_LINES, Source: "csv-tool"}, data, 7)
	if err != nil {
		t.Fatal(err)
	}
	if res.GetRows() != 5 || res.GetInvited() != 1 || res.GetImportedActive() != 1 || res.GetRejected() != 3 {
		t.Fatalf("report = %v", res)
	}
	h.Work(t)
	if got := h.get(t, "new@example.com"); got.GetState() != statePending || got.GetPreferences().GetTimezone() != "Asia/Kolkata" {
		t.Errorf("invited row = %v", got)
	}
	if n := len(h.MailsTo("new@example.com")); n != 1 {
		t.Errorf("%d confirmation mails to the invited row", n)
	}
	if got := h.get(t, "proof@example.com").GetState(); got != stateActive {
		t.Errorf("row with evidence is %v", got)
	}

	// Dry run changes nothing.
	before := h.Dump(t)
	res, err = h.importFile(t, &subscriberv1.ImportSubscribersRequest{Format: subscriberv1.ImportFormat_IMPORT_FORMAT_JSON_LINES, DryRun: true},
		`{"email":"dry@example.com","consent_text_version":"v1","consent_time":"2025-01-02"}`, 1<<20)
	if err != nil || res.GetImportedActive() != 1 {
		t.Fatalf("dry run = %v, %v", res, err)
	}
	if diff := cmp.Diff(before, h.Dump(t)); diff != "" {
		t.Errorf("dry run changed Redis (-before +after):\n%s", diff)
	}
}

func TestImportInvalidRequests(t *testing.T) {
	h := start(t)
	_, err := h.importFile(t, &subscriberv1.ImportSubscribersRequest{}, "email\na@example.com\n", 100)
	wantViolations(t, err, "format")
	_, err = h.importFile(t, &subscriberv1.ImportSubscribersRequest{Format: subscriberv1.ImportFormat_IMPORT_FORMAT_CSV}, "name,city\nx,y\n", 100)
	wantViolations(t, err, "data")
	if keys := h.SubKeys(t); len(keys) != 0 {
		t.Errorf("keys after refused imports: %v", keys)
	}
}
