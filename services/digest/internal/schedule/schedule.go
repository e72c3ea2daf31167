// Package schedule is the digest's calendar: when a subscriber is due
// (their local delivery hour, DST-correct), which edition a delivery
// belongs to (DAILY: the local date; WEEKLY: the ISO week), and the
// 15-minute slots the scheduler walks. Every function takes the time it
// works on: there is no clock here.
package schedule

import (
	"fmt"
	"time"

	// Every IANA zone must load, also on a minimal container image
	// without /usr/share/zoneinfo.
	_ "time/tzdata"
)

// SlotLength is the scheduler's step. Every delivery instant falls on a
// slot start: a local whole hour is a UTC quarter hour in every time zone
// (India's +5:30, Nepal's +5:45, Chatham's +12:45), and DST transitions
// happen on quarter hours too.
const SlotLength = 15 * time.Minute

// Frequency is how often a subscriber gets an edition.
type Frequency int

const (
	// Daily is one edition per local calendar day.
	Daily Frequency = iota + 1
	// Weekly is one edition per ISO week, on the chosen weekday.
	Weekly
)

// Prefs are the scheduling preferences of one subscriber.
type Prefs struct {
	Frequency Frequency
	// Weekday is the day of a weekly edition.
	Weekday time.Weekday
	// Hour is the local delivery hour, 0..23.
	Hour int
	// Location is the subscriber's time zone.
	Location *time.Location
}

// Valid reports whether p can be scheduled.
func (p Prefs) Valid() bool {
	return (p.Frequency == Daily || p.Frequency == Weekly) && p.Hour >= 0 && p.Hour <= 23 && p.Location != nil
}

// SlotStart is the start of the slot holding t, in UTC.
func SlotStart(t time.Time) time.Time { return t.UTC().Truncate(SlotLength) }

// Delivery is when a digest for the local date y-m-d is due: hour:00 local
// time. When the clocks go back and the hour happens twice, the first;
// when they go forward over it, the first instant after the gap (so the
// edition still arrives, as late as the clock change forces and no later).
func Delivery(loc *time.Location, hour, y int, m time.Month, d int) time.Time {
	want := wall{y, m, d, hour, 0}
	t := time.Date(y, m, d, hour, 0, 0, 0, loc)
	if wallOf(t.In(loc)) == want {
		// The earliest instant with this wall time: a repeated hour recurs
		// 30 minutes (Lord Howe) to 2 hours after its first occurrence.
		for _, back := range []time.Duration{2 * time.Hour, time.Hour, 30 * time.Minute} {
			if e := t.Add(-back); wallOf(e.In(loc)) == want {
				return e
			}
		}
		return t
	}
	// In a gap: the first quarter hour at or after the wanted wall time.
	for c := t.Add(-3 * time.Hour).Truncate(SlotLength); ; c = c.Add(SlotLength) {
		if !wallOf(c.In(loc)).before(want) {
			return c
		}
	}
}

// Due reports whether a subscriber with p is due in the slot starting at
// slot, and if so when (the delivery instant, inside the slot) and for
// which edition.
func Due(p Prefs, slot time.Time) (at time.Time, edition string, ok bool) {
	if !p.Valid() {
		return time.Time{}, "", false
	}
	end := slot.Add(SlotLength)
	// The slot may span two local dates (it starts before midnight).
	for _, t := range []time.Time{slot, end.Add(-time.Nanosecond)} {
		l := t.In(p.Location)
		at := Delivery(p.Location, p.Hour, l.Year(), l.Month(), l.Day())
		if at.Before(slot) || !at.Before(end) {
			continue
		}
		if p.Frequency == Weekly && at.In(p.Location).Weekday() != p.Weekday {
			continue
		}
		return at, Edition(p, at), true
	}
	return time.Time{}, "", false
}

// Edition is the edition a delivery at instant at belongs to: the local
// date "2026-06-12" for DAILY, the ISO week "2026-W24" for WEEKLY.
func Edition(p Prefs, at time.Time) string {
	l := at.In(p.Location)
	if p.Frequency == Weekly {
		y, w := l.ISOWeek()
		return fmt.Sprintf("%04d-W%02d", y, w)
	}
	return l.Format(time.DateOnly)
}

// SameLocalDay reports whether a and b fall on the same calendar day in
// loc: a missed slot is caught up only on the day it was due.
func SameLocalDay(loc *time.Location, a, b time.Time) bool {
	ya, ma, da := a.In(loc).Date()
	yb, mb, db := b.In(loc).Date()
	return ya == yb && ma == mb && da == db
}

// wall is a local wall-clock time to the minute.
type wall struct {
	y    int
	m    time.Month
	d, h int
	min  int
}

func wallOf(t time.Time) wall {
	return wall{t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute()}
}

func (w wall) before(o wall) bool {
	a := [5]int{w.y, int(w.m), w.d, w.h, w.min}
	b := [5]int{o.y, int(o.m), o.d, o.h, o.min}
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
