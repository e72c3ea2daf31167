package pages

import (
	_ "embed"
	"strings"

	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// timezoneList is timezones.txt: the zones of tzdata's zone.tab, sorted,
// plus UTC. Regenerate it from a current tzdata with
//
//	grep -v '^#' /usr/share/zoneinfo/zone.tab | cut -f3 | sort -u; echo UTC
//
// (keeping the comment at its top). TestTimezoneList checks every entry
// loads.
//
//go:embed timezones.txt
var timezoneList string

// timezones returns the zone names of timezones.txt.
func timezones() []string {
	var out []string
	for _, line := range strings.Split(timezoneList, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

// timezoneChoices are the options of the time zone select with chosen
// selected; a chosen zone the list lacks (a valid older name such as
// Asia/Calcutta, which browsers still report) is added first.
func timezoneChoices(chosen string) []tzChoice {
	names := timezones()
	out := make([]tzChoice, 0, len(names)+1)
	found := false
	for _, n := range names {
		out = append(out, tzChoice{Name: n, Selected: n == chosen})
		found = found || n == chosen
	}
	if !found && chosen != "" && len(chosen) <= subscription.MaxTimezoneLength {
		out = append([]tzChoice{{Name: cleanText(chosen), Selected: true}}, out...)
	}
	return out
}
