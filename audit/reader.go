package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Reader reads Records from an audit trail, one JSON line each.
type Reader struct {
	s    *bufio.Scanner
	line int
}

// maxLine bounds a line: records are a few hundred bytes; a longer line is
// not one of ours.
const maxLine = 64 << 10

// NewReader returns a Reader of r.
func NewReader(r io.Reader) *Reader {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 4096), maxLine)
	return &Reader{s: s}
}

// LineError is a line that is not a record; reading may go on after it.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("audit log line %d: %v", e.Line, e.Err) }

func (e *LineError) Unwrap() error { return e.Err }

// Next returns the next record; io.EOF at the end; a *LineError for a line
// that is not a record (call Next again to go on), or the read error.
func (r *Reader) Next() (Record, error) {
	for r.s.Scan() {
		r.line++
		b := r.s.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		rec, err := parseRecord(b)
		if err != nil {
			return Record{}, &LineError{Line: r.line, Err: err}
		}
		return rec, nil
	}
	if err := r.s.Err(); err != nil {
		return Record{}, fmt.Errorf("read audit log after line %d: %w", r.line, err)
	}
	return Record{}, io.EOF
}

// Filter selects records: `imdsd audit tail --role NAME --user NAME`. An
// empty field matches everything.
type Filter struct {
	Role string
	// User matches the user name or the decimal uid.
	User string
}

// Match reports whether rec passes f.
func (f Filter) Match(rec Record) bool {
	if f.Role != "" && rec.Role != f.Role {
		return false
	}
	if f.User != "" && rec.User != f.User && (rec.UID < 0 || strconv.Itoa(rec.UID) != f.User) {
		return false
	}
	return true
}

// Last returns the last n records of r that pass f, oldest first (all of
// them when n <= 0), and how many lines were not records.
func Last(r io.Reader, n int, f Filter) ([]Record, int, error) {
	var out []Record
	bad := 0
	rd := NewReader(r)
	for {
		rec, err := rd.Next()
		var le *LineError
		switch {
		case errors.Is(err, io.EOF):
			return out, bad, nil
		case errors.As(err, &le):
			bad++
			continue
		case err != nil:
			return out, bad, err
		}
		if !f.Match(rec) {
			continue
		}
		if n > 0 && len(out) == n {
			copy(out, out[1:])
			out = out[:n-1]
		}
		out = append(out, rec)
	}
}

// Print writes the records of r that pass f to w, one readable line each
// (Format), and reports lines that are not records at the end.
func Print(w io.Writer, r io.Reader, f Filter) error {
	rd := NewReader(r)
	bad := 0
	for {
		rec, err := rd.Next()
		var le *LineError
		switch {
		case errors.Is(err, io.EOF):
			if bad > 0 {
				return fmt.Errorf("%d lines of the audit log are not records", bad)
			}
			return nil
		case errors.As(err, &le):
			bad++
			continue
		case err != nil:
			return err
		}
		if f.Match(rec) {
			if _, err := io.WriteString(w, Format(rec)+"\n"); err != nil {
				return err
			}
		}
	}
}

// Format renders rec as one readable line, e.g.
//
//	2026-03-01 12:00:00 UTC  allowed   imds       role=deploy  alice(1001)  pid=4242 /usr/bin/aws  peer=127.0.0.1:51234  key=…WXYZ
//	2026-03-01 12:00:01 UTC  refused   imds       role=deploy  bob(1002)  not_allowed 403  peer=127.0.0.1:51240
//
// Text from the trail (names, paths) is quoted when it holds anything but
// printable characters, so a crafted user name or path cannot drive the
// terminal.
func Format(rec Record) string {
	var b strings.Builder
	b.WriteString(rec.Time.UTC().Format(time.DateTime + " MST"))
	fmt.Fprintf(&b, "  %-8s  %-9s  role=%s", safe(string(rec.Decision)), safe(rec.Listener), safe(rec.Role))
	switch {
	case rec.User != "" && rec.UID >= 0:
		fmt.Fprintf(&b, "  %s(%d)", safe(rec.User), rec.UID)
	case rec.User != "":
		b.WriteString("  " + safe(rec.User))
	case rec.UID >= 0:
		fmt.Fprintf(&b, "  uid=%d", rec.UID)
	default:
		b.WriteString("  user=unknown")
	}
	if rec.PID > 0 {
		fmt.Fprintf(&b, "  pid=%d", rec.PID)
		if rec.Exe != "" {
			b.WriteString(" " + safe(rec.Exe))
		}
	}
	if rec.Decision != Allowed && rec.Reason != "" {
		b.WriteString("  " + safe(rec.Reason))
		if rec.Status != 0 {
			fmt.Fprintf(&b, " %d", rec.Status)
		}
	}
	if rec.Peer.IsValid() {
		b.WriteString("  peer=" + rec.Peer.String())
	}
	if !rec.Token.IsZero() {
		b.WriteString("  token=" + rec.Token.String())
	}
	if !rec.Key.IsZero() {
		b.WriteString("  key=…" + safe(rec.Key.String()))
	}
	return b.String()
}

// safe returns s as it is when every character is printable and not a
// space, else quoted with escapes.
func safe(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) || r == ' ' || r == '"' {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}
