package subscription

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/paperroute/paperroute/platform/mailaddr"
	"github.com/paperroute/paperroute/platform/validation"
)

// ImportFormat is the format of an imported file.
type ImportFormat int

// The import formats.
const (
	ImportFormatUnspecified ImportFormat = iota
	// ImportCSV is CSV with a header row.
	ImportCSV
	// ImportJSONLines is one JSON object per line.
	ImportJSONLines
)

// Import bounds.
const (
	// MaxImportErrors bounds ImportReport.Errors (Rejected counts all).
	MaxImportErrors = 1000
	// maxImportLine bounds one line / record, in bytes.
	maxImportLine = 64 << 10
	// importWorkers is how many rows are stored concurrently.
	importWorkers = 16
)

// ImportRequest describes an import.
type ImportRequest struct {
	Format ImportFormat
	// Source names where the list comes from ("listmonk"); consent source
	// becomes "import:<Source>".
	Source string
	// DefaultConsentTextVersion applies to rows with a consent time but no
	// version column (a listmonk export has none).
	DefaultConsentTextVersion string
	// DryRun validates and counts without changing anything.
	DryRun bool
}

// ImportReport says what an import did.
type ImportReport struct {
	Rows, ImportedActive, Invited, Existing, Rejected int64
	Errors                                            []ImportRowError
}

// ImportRowError is one refused row.
type ImportRowError struct {
	Line   int64
	Field  string
	Reason string
}

// importRow is one row, as read, before validation.
type importRow struct {
	line                                         int64
	email, version, consentTime, source, status  string
	topics, keywords                             []string
	frequency, weeklyDay, hour, timezone, locale string
	signupIP, signupUA                           string
}

// Import reads a subscriber list from r and stores it (see docs/subscriber.md,
// "Import"): rows with consent evidence (a consent time, and a consent text
// version or req.DefaultConsentTextVersion) become ACTIVE without a mail;
// rows without get the double opt-in mail through the job queue (throttled
// by the global limit); an address that already has a record here is left
// as it is (so re-running a file changes nothing); invalid rows, rows the
// source marks blocklisted, and suppressed addresses are reported. r is
// read as a stream.
func (s *Service) Import(ctx context.Context, r io.Reader, req ImportRequest) (ImportReport, error) {
	var errs validation.Errors
	if req.Format != ImportCSV && req.Format != ImportJSONLines {
		errs.Add("format", "must be IMPORT_FORMAT_CSV or IMPORT_FORMAT_JSON_LINES")
	}
	if len(req.Source) > 64 || !allPrint(req.Source) {
		errs.Add("source", "must be at most 64 printable characters")
	}
	if req.DefaultConsentTextVersion != "" {
		checkConsentVersion(&errs, "default_consent_text_version", req.DefaultConsentTextVersion)
	}
	if err := errs.Err(); err != nil {
		return ImportReport{}, err
	}
	source := "import"
	if req.Source != "" {
		source += ":" + req.Source
	}
	rows := make(chan importRow, 256)
	var (
		mu  sync.Mutex
		rep ImportReport
	)
	reject := func(line int64, field, reason string) {
		mu.Lock()
		defer mu.Unlock()
		rep.Rejected++
		if len(rep.Errors) < MaxImportErrors {
			rep.Errors = append(rep.Errors, ImportRowError{Line: line, Field: field, Reason: reason})
		}
	}
	count := func(f *int64) {
		mu.Lock()
		defer mu.Unlock()
		*f++
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for range importWorkers {
		wg.Go(func() {
			for row := range rows {
				if ctx.Err() != nil {
					continue
				}
				if err := s.importRow(ctx, row, req, source, reject, count, &rep); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
				}
			}
		})
	}
	var readErr error
	if req.Format == ImportCSV {
		readErr = readCSV(r, rows, reject, count, &rep)
	} else {
		readErr = readJSONLines(r, rows, reject, count, &rep)
	}
	close(rows)
	wg.Wait()
	if firstErr != nil {
		return rep, firstErr
	}
	if readErr != nil {
		return rep, readErr
	}
	return rep, ctx.Err()
}

func (s *Service) importRow(ctx context.Context, row importRow, req ImportRequest, source string,
	reject func(int64, string, string), count func(*int64), rep *ImportReport) error {
	addr, err := mailaddr.Parse(row.email)
	if err != nil {
		reject(row.line, "email", reason(err))
		return nil
	}
	switch strings.ToLower(row.status) {
	case "blocklisted", "blacklisted", "unsubscribed", "bounced", "suppressed":
		reject(row.line, "status", "the source marks the address "+strings.ToLower(row.status)+"; not imported")
		return nil
	}
	var errs validation.Errors
	var hour *int
	if row.hour != "" {
		h, err := strconv.Atoi(row.hour)
		if err != nil {
			h = -1
		}
		hour = &h
	}
	freq := FrequencyUnspecified
	if row.frequency != "" {
		if freq, err = ParseFrequency(strings.ToLower(row.frequency)); err != nil {
			freq = Frequency(-1)
		}
	}
	day := time.Sunday
	if row.weeklyDay != "" {
		day = -1
		for d := time.Sunday; d <= time.Saturday; d++ {
			if strings.EqualFold(row.weeklyDay, d.String()) || strings.EqualFold(row.weeklyDay, d.String()[:3]) {
				day = d
			}
		}
	}
	prefs, err := s.checkPreferences(ctx, &errs, "", prefInput{
		topics: row.topics, keywords: row.keywords, frequency: freq, weeklyDay: day,
		deliveryHour: hour, timezone: row.timezone, locale: row.locale,
	})
	if err != nil {
		return err
	}
	client := checkClient(&errs, Client{IP: row.signupIP, UserAgent: row.signupUA})
	version := row.version
	if version == "" && row.consentTime != "" {
		version = req.DefaultConsentTextVersion
	}
	var consentAt time.Time
	if row.consentTime != "" {
		consentAt, err = parseImportTime(row.consentTime)
		if err != nil || consentAt.After(s.clock().Add(time.Hour)) || consentAt.Year() < 1990 {
			errs.Add("consent_time", "must be an RFC 3339 time (or YYYY-MM-DD HH:MM:SS) since 1990, not in the future")
			consentAt = time.Time{}
		}
	}
	evidence := !consentAt.IsZero() && version != ""
	if version != "" {
		checkConsentVersion(&errs, "consent_text_version", version)
	}
	if err := errs.Err(); err != nil {
		var verr *validation.Error
		if errors.As(err, &verr) && len(verr.Violations) > 0 {
			reject(row.line, verr.Violations[0].Field, verr.Violations[0].Description)
		}
		return nil
	}
	if sup, err := s.store.Suppressed(ctx, addr.Key); err != nil {
		return fmt.Errorf("subscription: import line %d: %w", row.line, err)
	} else if sup {
		reject(row.line, "email", "the address is suppressed here")
		return nil
	}
	existing, err := s.store.GetByIdentity(ctx, addr.Key)
	switch {
	case err == nil && existing.State == StateSuppressed:
		reject(row.line, "email", "the address is suppressed here")
		return nil
	case err == nil:
		count(&rep.Existing)
		return nil
	case !errors.Is(err, ErrNotFound):
		return fmt.Errorf("subscription: import line %d: %w", row.line, err)
	}
	now := s.clock()
	su := Signup{
		Email: addr.Addr, Identity: addr.Key, Preferences: prefs,
		Consent: ConsentEvidence{ConsentTextVersion: version, SignupTime: now, SignupIP: client.IP, SignupUserAgent: client.UserAgent, Source: source},
	}
	if row.source != "" {
		su.Consent.Source += " (" + row.source + ")"
	}
	if evidence {
		su.Consent.SignupTime = consentAt.UTC()
		su.Consent.ConfirmTime = consentAt.UTC()
		su.Active, su.SkipMail = true, true
	} else {
		if su.Consent.ConsentTextVersion == "" {
			su.Consent.ConsentTextVersion = req.DefaultConsentTextVersion
		}
		su.Throttle = true
	}
	if req.DryRun {
		if evidence {
			count(&rep.ImportedActive)
		} else {
			count(&rep.Invited)
		}
		return nil
	}
	if evidence {
		_, created, err := s.create(ctx, su)
		if err != nil {
			return fmt.Errorf("subscription: import line %d: %w", row.line, err)
		}
		if created {
			count(&rep.ImportedActive)
		} else {
			count(&rep.Existing) // created concurrently by another row or sign-up
		}
		return nil
	}
	if err := s.jobs.Push(ctx, Job{Kind: JobSignup, Signup: &su}); err != nil {
		return fmt.Errorf("subscription: import line %d: %w", row.line, err)
	}
	count(&rep.Invited)
	return nil
}

func parseImportTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("unknown time format %q", v)
}

// splitList reads a list cell: a JSON array, or values separated by ";" or
// "|".
func splitList(v string) []string {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	if strings.HasPrefix(v, "[") {
		var out []string
		if json.Unmarshal([]byte(v), &out) == nil {
			return out
		}
	}
	return strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == '|' })
}

// csvColumns maps accepted header names (lower case) to row fields. The
// listmonk export's columns (uuid, email, name, attributes, status,
// created_at, updated_at) are read as they are: created_at is the consent
// time, status "blocklisted" refuses the row.
var csvColumns = map[string]func(*importRow, string){
	"email":                func(r *importRow, v string) { r.email = v },
	"consent_text_version": func(r *importRow, v string) { r.version = v },
	"consent_time":         func(r *importRow, v string) { r.consentTime = v },
	"created_at":           func(r *importRow, v string) { r.consentTime = v },
	"consent_source":       func(r *importRow, v string) { r.source = v },
	"status":               func(r *importRow, v string) { r.status = v },
	"topics":               func(r *importRow, v string) { r.topics = splitList(v) },
	"keywords":             func(r *importRow, v string) { r.keywords = splitList(v) },
	"frequency":            func(r *importRow, v string) { r.frequency = v },
	"weekly_day":           func(r *importRow, v string) { r.weeklyDay = v },
	"delivery_hour":        func(r *importRow, v string) { r.hour = v },
	"timezone":             func(r *importRow, v string) { r.timezone = v },
	"locale":               func(r *importRow, v string) { r.locale = v },
	"signup_ip":            func(r *importRow, v string) { r.signupIP = v },
	"signup_user_agent":    func(r *importRow, v string) { r.signupUA = v },
}

func readCSV(r io.Reader, rows chan<- importRow, reject func(int64, string, string), count func(*int64), rep *ImportReport) error {
	cr := csv.NewReader(bufio.NewReaderSize(r, 1<<16))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return validation.Field("data", "must start with a CSV header row naming an email column")
	}
	cols := make([]func(*importRow, string), len(header))
	hasEmail := false
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		cols[i] = csvColumns[h]
		hasEmail = hasEmail || h == "email"
	}
	if !hasEmail {
		return validation.Field("data", "the CSV header has no email column")
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		count(&rep.Rows)
		if err != nil {
			var perr *csv.ParseError
			if !errors.As(err, &perr) {
				return fmt.Errorf("subscription: import: read: %w", err)
			}
			reject(int64(perr.Line), "data", "is not valid CSV: "+perr.Err.Error())
			continue
		}
		line, _ := cr.FieldPos(0)
		row := importRow{line: int64(line)}
		for i, v := range rec {
			if i < len(cols) && cols[i] != nil {
				if len(v) > maxImportLine {
					v = v[:maxImportLine]
				}
				cols[i](&row, strings.TrimSpace(v))
			}
		}
		rows <- row
	}
}

// jsonRow is one JSON Lines record.
type jsonRow struct {
	Email              string          `json:"email"`
	ConsentTextVersion string          `json:"consent_text_version"`
	ConsentTime        string          `json:"consent_time"`
	ConsentSource      string          `json:"consent_source"`
	Status             string          `json:"status"`
	Topics             []string        `json:"topics"`
	Keywords           []string        `json:"keywords"`
	Frequency          string          `json:"frequency"`
	WeeklyDay          string          `json:"weekly_day"`
	DeliveryHour       json.RawMessage `json:"delivery_hour"`
	Timezone           string          `json:"timezone"`
	Locale             string          `json:"locale"`
	SignupIP           string          `json:"signup_ip"`
	SignupUserAgent    string          `json:"signup_user_agent"`
}

func readJSONLines(r io.Reader, rows chan<- importRow, reject func(int64, string, string), count func(*int64), rep *ImportReport) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<16), maxImportLine)
	var line int64
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		count(&rep.Rows)
		var j jsonRow
		if err := json.Unmarshal(b, &j); err != nil {
			reject(line, "data", "is not a JSON object: "+err.Error())
			continue
		}
		hour := strings.Trim(string(j.DeliveryHour), `"`)
		if hour == "null" {
			hour = ""
		}
		rows <- importRow{
			line: line, email: j.Email, version: j.ConsentTextVersion, consentTime: j.ConsentTime, source: j.ConsentSource,
			status: j.Status, topics: j.Topics, keywords: j.Keywords, frequency: j.Frequency, weeklyDay: j.WeeklyDay,
			hour: hour, timezone: j.Timezone, locale: j.Locale, signupIP: j.SignupIP, signupUA: j.SignupUserAgent,
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return validation.Field("data", fmt.Sprintf("line %d is longer than %d bytes", line+1, maxImportLine))
		}
		return fmt.Errorf("subscription: import: read: %w", err)
	}
	return nil
}
