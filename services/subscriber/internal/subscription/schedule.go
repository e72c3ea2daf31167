package subscription

import (
	"fmt"
	"time"
)

// Slot is one bucket of the delivery-slot index: the ACTIVE subscribers of
// one time zone and local delivery hour, daily ones (Weekday -1) or weekly
// ones on one weekday.
type Slot struct {
	Timezone string
	Hour     int
	// Weekday is -1 for daily subscribers, else the weekly delivery day.
	Weekday int
}

// String is a stable, sortable name of the slot ("Europe/Berlin/07/d").
func (s Slot) String() string {
	day := "d"
	if s.Weekday >= 0 {
		day = fmt.Sprintf("w%d", s.Weekday)
	}
	return fmt.Sprintf("%s/%02d/%s", s.Timezone, s.Hour, day)
}

// SlotOf is the slot a subscriber with preferences p is indexed under.
func SlotOf(p Preferences) Slot {
	s := Slot{Timezone: p.Timezone, Hour: p.DeliveryHour, Weekday: -1}
	if p.Frequency == FrequencyWeekly {
		s.Weekday = int(p.WeeklyDay)
	}
	return s
}

// DueSlots returns the slots of time zone loc that are due at instant at:
// those whose local delivery hour is the local hour of at, on that local
// weekday. DST is handled so that every slot is due exactly once per local
// day:
//   - a local hour skipped by a spring-forward change (02:00 in
//     Europe/Berlin on the last Sunday of March) is due in the first hour
//     after the gap, together with that hour's own slot;
//   - a local hour that repeats on a fall-back change is due only in its
//     first occurrence.
//
// Zones with half- and quarter-hour offsets (Asia/Kolkata, Asia/Kathmandu)
// need nothing special: the local hour is what counts, whatever UTC minute
// it starts at. So a caller must ask at least once inside every local hour
// of every zone, i.e. every 15 minutes (:00, :15, :30, :45 UTC); any instant
// inside a local hour gives the same answer, and the digest's edition key
// makes repeated asks harmless.
func DueSlots(at time.Time, loc *time.Location) []Slot {
	local := at.In(loc)
	// The start of the current local hour, and the local time just before.
	hourStart := at.Add(-time.Duration(local.Minute())*time.Minute - time.Duration(local.Second())*time.Second - time.Duration(local.Nanosecond()))
	prev := hourStart.Add(-time.Nanosecond).In(loc)
	cur := local.Hour()
	first := 0
	if sameDate(prev, local) {
		if prev.Hour() == cur {
			return nil // the second run of a repeated hour
		}
		first = prev.Hour() + 1
	}
	var out []Slot
	for h := first; h <= cur; h++ {
		out = append(out,
			Slot{Timezone: loc.String(), Hour: h, Weekday: -1},
			Slot{Timezone: loc.String(), Hour: h, Weekday: int(local.Weekday())})
	}
	return out
}

func sameDate(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}
