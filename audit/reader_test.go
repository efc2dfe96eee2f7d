package audit_test

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsd/imdsd/audit"
)

func TestFormat(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	cases := []struct {
		name string
		rec  audit.Record
		want string
	}{
		{"allowed with process", sample(t, 0),
			"2026-03-01 12:00:00 UTC  allowed   imds       role=deploy  alice(1001)  pid=1000 /usr/local/bin/terraform  peer=127.0.0.1:51234  key=…MPLE"},
		{"refused container, unknown caller", sample(t, 1),
			"2026-03-01 12:00:00 UTC  refused   container  role=ci  user=unknown  pid=1001  unknown_caller 403  peer=[::ffff:10.88.0.5]:40000  token=0123456789ab"},
		{"uid without a name, local time shown in UTC",
			audit.Record{Time: at, Listener: "imds", Role: "r", Decision: audit.Refused, Reason: "not_allowed", UID: 4242},
			"2026-03-01 11:00:00 UTC  refused   imds       role=r  uid=4242  not_allowed"},
		{"hostile names are quoted",
			audit.Record{Time: at, Listener: "imds", Role: "r", Decision: audit.Allowed, UID: 7, User: "evil\x1b[2J", PID: 9, Exe: "/tmp/a b"},
			`2026-03-01 11:00:00 UTC  allowed   imds       role=r  "evil\x1b[2J"(7)  pid=9 "/tmp/a b"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := audit.Format(tc.rec); got != tc.want {
				t.Errorf("Format() =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func trail(t *testing.T, recs ...audit.Record) string {
	t.Helper()
	var b bytes.Buffer
	w, err := audit.Open(audit.Options{Out: &b})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		w.Write(r)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestFilter(t *testing.T) {
	alice, anon := sample(t, 0), sample(t, 1)
	cases := []struct {
		f    audit.Filter
		rec  audit.Record
		want bool
	}{
		{audit.Filter{}, anon, true},
		{audit.Filter{Role: "deploy"}, alice, true},
		{audit.Filter{Role: "ci"}, alice, false},
		{audit.Filter{User: "alice"}, alice, true},
		{audit.Filter{User: "1001"}, alice, true},
		{audit.Filter{User: "bob"}, alice, false},
		{audit.Filter{User: "-1"}, anon, false},
		{audit.Filter{Role: "deploy", User: "alice"}, alice, true},
	}
	for _, tc := range cases {
		if got := tc.f.Match(tc.rec); got != tc.want {
			t.Errorf("%+v.Match(role %s user %s) = %v, want %v", tc.f, tc.rec.Role, tc.rec.User, got, tc.want)
		}
	}
}

func TestLast(t *testing.T) {
	var recs []audit.Record
	for i := range 9 {
		recs = append(recs, sample(t, i))
	}
	text := trail(t, recs...) + "not json\n\n" + `{"time":"x"}` + "\n"
	got, bad, err := audit.Last(strings.NewReader(text), 2, audit.Filter{Role: "deploy"})
	if err != nil || bad != 2 {
		t.Fatalf("Last() = %d bad lines, %v; want 2, nil", bad, err)
	}
	if diff := cmp.Diff([]audit.Record{recs[6], recs[8]}, got, cmpRecord); diff != "" {
		t.Errorf("Last(2, role deploy) (-want +got):\n%s", diff)
	}
	all, _, _ := audit.Last(strings.NewReader(text), 0, audit.Filter{})
	if len(all) != 9 {
		t.Errorf("Last(0) = %d records, want 9", len(all))
	}
}

func TestReaderLineError(t *testing.T) {
	r := audit.NewReader(strings.NewReader(trail(t, sample(t, 0)) + "garbage\n" + trail(t, sample(t, 1))))
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	_, err := r.Next()
	var le *audit.LineError
	if !errors.As(err, &le) || le.Line != 2 {
		t.Fatalf("Next() = %v, want a LineError for line 2", err)
	}
	if rec, err := r.Next(); err != nil || rec.Role != "ci" {
		t.Errorf("Next() after a bad line = %+v, %v; want the next record", rec, err)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next() at the end = %v, want io.EOF", err)
	}
}

func TestPrint(t *testing.T) {
	text := trail(t, sample(t, 0), sample(t, 1), sample(t, 2))
	var out bytes.Buffer
	if err := audit.Print(&out, strings.NewReader(text), audit.Filter{User: "alice"}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "pid=1002") {
		t.Errorf("Print(user alice) =\n%s\nwant records 0 and 2", out.String())
	}
	err := audit.Print(io.Discard, strings.NewReader(text+"{\n"), audit.Filter{})
	if err == nil || err.Error() != "1 lines of the audit log are not records" {
		t.Errorf("Print() with a bad line = %v", err)
	}
}

func TestRoundTripPeerAndUID(t *testing.T) {
	r := audit.Record{Time: time.Unix(0, 0), Listener: "imds", Role: "r", Decision: audit.Allowed, UID: 0, User: "root",
		Peer: netip.MustParseAddrPort("[fe80::1%eth0]:80")}
	got, _, err := audit.Last(strings.NewReader(trail(t, r)), 0, audit.Filter{})
	if err != nil || len(got) != 1 {
		t.Fatal(got, err)
	}
	if diff := cmp.Diff(r, got[0], cmpRecord); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}
