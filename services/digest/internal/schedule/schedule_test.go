package schedule_test

import (
	"testing"
	"time"

	"github.com/paperroute/paperroute/services/digest/internal/schedule"
)

func load(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// dueSlots walks every slot of [from, to) and returns the delivery
// instants and editions found.
func dueSlots(p schedule.Prefs, from, to time.Time) (ats []time.Time, editions []string) {
	for s := schedule.SlotStart(from); s.Before(to); s = s.Add(schedule.SlotLength) {
		if at, ed, ok := schedule.Due(p, s); ok {
			ats = append(ats, at)
			editions = append(editions, ed)
		}
	}
	return ats, editions
}

func TestDueOncePerDay(t *testing.T) {
	tests := []struct {
		name    string
		zone    string
		hour    int
		from    string // a 24-hour local day is searched from here, plus margin
		wantAt  []string
		wantEds []string
	}{
		{"plain", "Europe/Berlin", 8, "2026-06-11T22:00:00Z", []string{"2026-06-12T06:00:00Z"}, []string{"2026-06-12"}},
		{"half-hour zone", "Asia/Kolkata", 8, "2026-06-11T18:30:00Z", []string{"2026-06-12T02:30:00Z"}, []string{"2026-06-12"}},
		{"quarter-hour zone", "Asia/Kathmandu", 8, "2026-06-11T18:15:00Z", []string{"2026-06-12T02:15:00Z"}, []string{"2026-06-12"}},
		{"Chatham +12:45", "Pacific/Chatham", 7, "2026-06-11T11:15:00Z", []string{"2026-06-11T18:15:00Z"}, []string{"2026-06-12"}},
		// Spring forward in Berlin: 02:00-03:00 does not exist on 29 March.
		{"nonexistent hour", "Europe/Berlin", 2, "2026-03-28T23:00:00Z", []string{"2026-03-29T01:00:00Z"}, []string{"2026-03-29"}},
		// Fall back: 02:00-03:00 happens twice on 25 October; only the first.
		{"repeated hour", "Europe/Berlin", 2, "2026-10-24T22:00:00Z", []string{"2026-10-25T00:00:00Z"}, []string{"2026-10-25"}},
		// US spring forward at 02:00 local.
		{"nonexistent hour, New York", "America/New_York", 2, "2026-03-08T05:00:00Z", []string{"2026-03-08T07:00:00Z"}, []string{"2026-03-08"}},
		// Lord Howe moves its clocks by 30 minutes (02:00 +11 → 01:30 +10:30).
		{"half-hour DST change", "Australia/Lord_Howe", 1, "2026-04-04T13:30:00Z", []string{"2026-04-04T14:00:00Z"}, []string{"2026-04-05"}},
		// Either side of the date line, the same UTC instant is two dates.
		{"date line east", "Pacific/Kiritimati", 9, "2026-06-11T10:00:00Z", []string{"2026-06-11T19:00:00Z"}, []string{"2026-06-12"}},
		{"date line west", "Pacific/Pago_Pago", 9, "2026-06-12T11:00:00Z", []string{"2026-06-12T20:00:00Z"}, []string{"2026-06-12"}},
		{"midnight", "America/Los_Angeles", 0, "2026-06-12T07:00:00Z", []string{"2026-06-12T07:00:00Z"}, []string{"2026-06-12"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := schedule.Prefs{Frequency: schedule.Daily, Hour: tt.hour, Location: load(t, tt.zone)}
			from := utc(tt.from)
			ats, eds := dueSlots(p, from, from.Add(24*time.Hour))
			if len(ats) != len(tt.wantAt) {
				t.Fatalf("due at %v (%v), want exactly %v", ats, eds, tt.wantAt)
			}
			for i := range ats {
				if !ats[i].Equal(utc(tt.wantAt[i])) || eds[i] != tt.wantEds[i] {
					t.Errorf("due at %v for %s, want %s for %s", ats[i].UTC(), eds[i], tt.wantAt[i], tt.wantEds[i])
				}
			}
		})
	}
}

func TestEveryDayOfAYearExactlyOnce(t *testing.T) {
	// Through both DST changes, in zones with odd offsets, every local day
	// has exactly one delivery and every edition is distinct.
	for _, zone := range []string{"Europe/Berlin", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe", "Pacific/Chatham", "Pacific/Kiritimati"} {
		for _, hour := range []int{0, 1, 2, 3, 23} {
			p := schedule.Prefs{Frequency: schedule.Daily, Hour: hour, Location: load(t, zone)}
			_, eds := dueSlots(p, utc("2026-01-01T00:00:00Z"), utc("2027-01-01T00:00:00Z"))
			seen := map[string]bool{}
			for _, e := range eds {
				if seen[e] {
					t.Errorf("%s hour %d: edition %s due twice", zone, hour, e)
				}
				seen[e] = true
			}
			if n := len(eds); n < 364 || n > 366 {
				t.Errorf("%s hour %d: %d deliveries in a year", zone, hour, n)
			}
		}
	}
}

func TestWeekly(t *testing.T) {
	berlin := load(t, "Europe/Berlin")
	p := schedule.Prefs{Frequency: schedule.Weekly, Weekday: time.Thursday, Hour: 9, Location: berlin}
	ats, eds := dueSlots(p, utc("2026-12-20T00:00:00Z"), utc("2027-01-15T00:00:00Z"))
	want := []string{"2026-W52", "2026-W53", "2027-W01", "2027-W02"}
	if len(eds) != len(want) {
		t.Fatalf("weekly editions %v at %v, want %v", eds, ats, want)
	}
	for i := range want {
		if eds[i] != want[i] || ats[i].In(berlin).Weekday() != time.Thursday || ats[i].In(berlin).Hour() != 9 {
			t.Errorf("delivery %d: %s at %v, want %s on a Thursday at 09:00", i, eds[i], ats[i].In(berlin), want[i])
		}
	}
	// Sunday late evening in Auckland is still the week before Monday's.
	akl := load(t, "Pacific/Auckland")
	sun := schedule.Prefs{Frequency: schedule.Weekly, Weekday: time.Sunday, Hour: 23, Location: akl}
	if _, ed, ok := schedule.Due(sun, utc("2026-06-14T11:00:00Z")); !ok || ed != "2026-W24" {
		t.Errorf("Auckland Sunday 23:00 = %q, %v; want 2026-W24", ed, ok)
	}
}

func TestSameLocalDay(t *testing.T) {
	tokyo := load(t, "Asia/Tokyo")
	if !schedule.SameLocalDay(tokyo, utc("2026-06-11T23:00:00Z"), utc("2026-06-12T14:59:00Z")) {
		t.Error("08:00 and 23:59 Tokyo time are the same day")
	}
	if schedule.SameLocalDay(tokyo, utc("2026-06-11T23:00:00Z"), utc("2026-06-12T15:00:00Z")) {
		t.Error("08:00 and the next midnight Tokyo time are not the same day")
	}
}

func TestInvalidPrefsAreNeverDue(t *testing.T) {
	for _, p := range []schedule.Prefs{
		{Frequency: schedule.Daily, Hour: 24, Location: time.UTC},
		{Frequency: 0, Hour: 8, Location: time.UTC},
		{Frequency: schedule.Daily, Hour: 8},
	} {
		if _, _, ok := schedule.Due(p, utc("2026-06-12T08:00:00Z")); ok {
			t.Errorf("Due(%+v) = true", p)
		}
	}
}
