package paper_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/paperroute/paperroute/platform/validation"
	"github.com/paperroute/paperroute/services/digest/internal/paper"
)

func TestBatchKeepsFirstPositionAndLastData(t *testing.T) {
	b := paper.NewBatch("data", 3)
	b.Add(0, paper.Paper{ID: "2401.00001", Title: "first"}, nil)
	b.Add(1, paper.Paper{ID: "2401.00002", Title: "second"}, nil)
	b.Add(2, paper.Paper{ID: "2401.00001", Title: "first, again"}, nil)
	got, err := b.Papers()
	if err != nil || len(got) != 2 || got[0].Title != "first, again" || got[1].ID != "2401.00002" {
		t.Errorf("Papers() = %+v, %v; want 2401.00001 (its last data) first, then 2401.00002", got, err)
	}
}

func TestBatchReportsBoundedProblems(t *testing.T) {
	b := paper.NewBatch("data", 2)
	b.Add(0, paper.Paper{ID: "2401.00001"}, nil)
	for i := 1; i <= 5; i++ {
		b.Add(i, paper.Paper{}, errors.New("no id"))
	}
	got, err := b.Papers()
	var verr *validation.Error
	if got != nil || !errors.As(err, &verr) {
		t.Fatalf("Papers() = %v, %v; want no papers and a validation error (all or nothing)", got, err)
	}
	msg := err.Error()
	for _, want := range []string{"entry 1: no id", "entry 2: no id", "and 3 more invalid entries"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "entry 3:") {
		t.Errorf("error %q lists more than 2 entries", msg)
	}
}
