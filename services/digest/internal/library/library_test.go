package library_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/redistest"
	"github.com/paperroute/paperroute/platform/validation"

	"github.com/paperroute/paperroute/services/digest/internal/library"
	"github.com/paperroute/paperroute/services/digest/internal/redisstore"
)

var now = time.Date(2026, 6, 13, 9, 0, 0, 0, time.UTC)

func newLibrary(t *testing.T, maxBytes int) (*library.Service, *redisstore.Store) {
	t.Helper()
	store := redisstore.New(redistest.Start(t, redistest.WithoutAppendOnly()).Client())
	lib, err := library.New(library.Config{Store: store, MaxImportBytes: maxBytes, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return lib, store
}

func TestNewRejects(t *testing.T) {
	store := redisstore.New(nil)
	for _, cfg := range []library.Config{
		{MaxImportBytes: 1024},
		{Store: store, MaxImportBytes: 0},
		{Store: store, MaxImportBytes: library.MaxImportBytes + 1},
	} {
		if _, err := library.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestImportStampsAndEstimates(t *testing.T) {
	ctx := context.Background()
	lib, store := newLibrary(t, library.MaxImportBytes)
	feed, err := os.ReadFile("../arxiv/testdata/arxiv-atom-sample.xml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := lib.Import(ctx, library.FormatArxivAtom, feed)
	if err != nil || res.Created != 1 {
		t.Fatalf("Import = %+v, %v", res, err)
	}
	p, err := store.GetPaper(ctx, "2606.13677")
	if err != nil {
		t.Fatal(err)
	}
	// No daily list has carried it: its featured day is its arXiv day.
	if p.FeaturedDay != "2026-06-11" || !p.UpdateTime.Equal(now) || p.Counted != 0 {
		t.Errorf("stored paper: featured %q, updated %v, counted %v; want 2026-06-11, the clock's time, no counts", p.FeaturedDay, p.UpdateTime, p.Counted)
	}
}

func TestImportRejectsBeforeParsing(t *testing.T) {
	lib, _ := newLibrary(t, 1024)
	big := make([]byte, 1025)
	tests := []struct {
		name   string
		format library.Format
		data   []byte
		fields []string
	}{
		{"nothing", library.FormatUnspecified, nil, []string{"format", "data"}},
		{"over the configured limit", library.FormatHFDailyJSON, big, []string{"data"}},
		{"unknown format", library.Format(7), []byte(`[]`), []string{"format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := lib.Import(context.Background(), tt.format, tt.data)
			var verr *validation.Error
			if !errors.As(err, &verr) || len(verr.Violations) != len(tt.fields) {
				t.Fatalf("Import = %v, want violations on %v", err, tt.fields)
			}
			for i, v := range verr.Violations {
				if v.Field != tt.fields[i] {
					t.Errorf("violation %d on %q, want %q", i, v.Field, tt.fields[i])
				}
			}
		})
	}
}
