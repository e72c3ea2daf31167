package subscription_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := subscription.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// dueHours is the daily slots' hours of DueSlots (each hour also has its
// weekday slot; checked separately).
func dueHours(slots []subscription.Slot) []int {
	var out []int
	for _, s := range slots {
		if s.Weekday == -1 {
			out = append(out, s.Hour)
		}
	}
	return out
}

func TestDueSlots(t *testing.T) {
	utc := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, time.UTC) }
	tests := []struct {
		name string
		zone string
		at   time.Time
		want []int
	}{
		{"UTC on the hour", "UTC", utc(2026, 6, 12, 7, 0), []int{7}},
		{"UTC late in the hour", "UTC", utc(2026, 6, 12, 7, 59), []int{7}},
		{"midnight", "UTC", utc(2026, 6, 12, 0, 10), []int{0}},
		// Kolkata is UTC+5:30: 02:30 UTC is 08:00 local.
		{"Kolkata at local 08:00", "Asia/Kolkata", utc(2026, 6, 12, 2, 30), []int{8}},
		{"Kolkata at local 07:59", "Asia/Kolkata", utc(2026, 6, 12, 2, 29), []int{7}},
		// Kathmandu is UTC+5:45: 02:15 UTC is 08:00 local.
		{"Kathmandu at local 08:00", "Asia/Kathmandu", utc(2026, 6, 12, 2, 15), []int{8}},
		{"Kathmandu at local 07:45", "Asia/Kathmandu", utc(2026, 6, 12, 2, 0), []int{7}},
		// Berlin, 29 March 2026: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
		{"Berlin before the gap", "Europe/Berlin", utc(2026, 3, 29, 0, 30), []int{1}},
		{"Berlin after the gap: the missing 02 slot is due with 03", "Europe/Berlin", utc(2026, 3, 29, 1, 0), []int{2, 3}},
		{"Berlin later that hour", "Europe/Berlin", utc(2026, 3, 29, 1, 45), []int{2, 3}},
		{"Berlin the hour after", "Europe/Berlin", utc(2026, 3, 29, 2, 0), []int{4}},
		// Berlin, 25 October 2026: 03:00 CEST falls back to 02:00 CET; 02:xx
		// happens twice (00:00–01:00 UTC and 01:00–02:00 UTC).
		{"Berlin first 02:xx", "Europe/Berlin", utc(2026, 10, 25, 0, 30), []int{2}},
		{"Berlin repeated 02:xx is not due again", "Europe/Berlin", utc(2026, 10, 25, 1, 30), nil},
		{"Berlin 03:00 after the repeat", "Europe/Berlin", utc(2026, 10, 25, 2, 0), []int{3}},
		// New York, 8 March 2026: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
		{"New York gap", "America/New_York", utc(2026, 3, 8, 7, 5), []int{2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := subscription.DueSlots(tt.at, mustLoad(t, tt.zone))
			if diff := cmp.Diff(tt.want, dueHours(got)); diff != "" {
				t.Errorf("due hours at %s (-want +got):\n%s", tt.at, diff)
			}
			for _, s := range got {
				if s.Timezone != tt.zone {
					t.Errorf("slot %v has zone %q", s, s.Timezone)
				}
			}
			if len(got) != 2*len(tt.want) {
				t.Errorf("%d slots, want a daily and a weekly one per hour: %v", len(got), got)
			}
		})
	}
}

// TestDueSlotsOncePerDay walks every minute of the DST-change days of
// several zones and checks that every local hour 0–23 is due in exactly one
// contiguous run of instants, i.e. one delivery per slot per day.
func TestDueSlotsOncePerDay(t *testing.T) {
	for _, c := range []struct {
		zone string
		day  time.Time // a UTC instant inside the local day
	}{
		{"Europe/Berlin", time.Date(2026, 3, 29, 12, 0, 0, 0, time.UTC)},
		{"Europe/Berlin", time.Date(2026, 10, 25, 12, 0, 0, 0, time.UTC)},
		{"America/New_York", time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)},
		{"America/New_York", time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)},
		{"Australia/Lord_Howe", time.Date(2026, 4, 5, 2, 0, 0, 0, time.UTC)},
		{"Asia/Kolkata", time.Date(2026, 6, 12, 6, 0, 0, 0, time.UTC)},
		{"Asia/Kathmandu", time.Date(2026, 6, 12, 6, 0, 0, 0, time.UTC)},
	} {
		loc := mustLoad(t, c.zone)
		local := c.day.In(loc)
		y, m, d := local.Date()
		runs := map[int]int{}
		prev := map[int]bool{}
		// From 2 hours before local midnight to 2 hours after the next.
		for at := time.Date(y, m, d, 0, 0, 0, 0, loc).Add(-2 * time.Hour); at.Before(time.Date(y, m, d+1, 0, 0, 0, 0, loc).Add(2 * time.Hour)); at = at.Add(time.Minute) {
			cur := map[int]bool{}
			ly, lm, ld := at.In(loc).Date()
			for _, h := range dueHours(subscription.DueSlots(at, loc)) {
				if ly == y && lm == m && ld == d {
					cur[h] = true
					if !prev[h] {
						runs[h]++
					}
				}
			}
			prev = cur
		}
		for h := range 24 {
			if runs[h] != 1 {
				t.Errorf("%s %d-%02d-%02d: local hour %d is due in %d separate runs, want 1", c.zone, y, m, d, h, runs[h])
			}
		}
	}
}

func TestSlotOf(t *testing.T) {
	daily := subscription.SlotOf(subscription.Preferences{Frequency: subscription.FrequencyDaily, DeliveryHour: 7, Timezone: "Asia/Kolkata", WeeklyDay: time.Friday})
	if daily != (subscription.Slot{Timezone: "Asia/Kolkata", Hour: 7, Weekday: -1}) || daily.String() != "Asia/Kolkata/07/d" {
		t.Errorf("daily slot = %+v %q", daily, daily)
	}
	weekly := subscription.SlotOf(subscription.Preferences{Frequency: subscription.FrequencyWeekly, DeliveryHour: 18, Timezone: "UTC", WeeklyDay: time.Monday})
	if weekly.String() != "UTC/18/w1" {
		t.Errorf("weekly slot = %q", weekly)
	}
	// A weekly Monday subscriber is due on Monday only.
	mon := time.Date(2026, 6, 15, 18, 30, 0, 0, time.UTC)
	if got := subscription.DueSlots(mon, time.UTC); !contains(got, weekly) {
		t.Errorf("Monday 18:30: %v lacks %v", got, weekly)
	}
	if got := subscription.DueSlots(mon.Add(24*time.Hour), time.UTC); contains(got, weekly) {
		t.Errorf("Tuesday 18:30: %v has %v", got, weekly)
	}
}

func contains(slots []subscription.Slot, s subscription.Slot) bool {
	for _, x := range slots {
		if x == s {
			return true
		}
	}
	return false
}
