package audit

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// appendString writes what encoding/json writes (HTML characters aside,
// which encoding/json escapes and JSON does not require).
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "alice", `a"b\c`, "new\nline\r\ttab", "\x00\x01\x1f\x7f", "é中文🙂",
		"bad\xffutf8\xc3", "\u2028\u2029", "/usr/local/bin/terraform (deleted)", "DOMAIN\\user",
	} {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got := appendString(nil, s)
		if string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

// FuzzAppendString: appendString writes exactly what encoding/json writes
// without HTML escaping, for any string.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"alice", "\x00\"\\\n", "bad\xff\xfe", "\u2028", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s); string(got) != strings.TrimSuffix(want.String(), "\n") {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want.String())
		}
	})
}

func TestAppendRecordAllocatesNothing(t *testing.T) {
	tok, _ := NewTokenID("0123456789ab")
	r := Record{
		Time: time.Now(), Listener: "imds", Role: "deploy", Decision: Allowed, Reason: "allowed", Status: 200,
		Peer: netip.MustParseAddrPort("[::1]:40000"), UID: 1001, User: "alice", PID: 42, Exe: "/usr/bin/aws",
		Token: tok, Key: SuffixOf("ASIAIOSFODNN7EXAMPLE"),
	}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = appendRecord(buf[:0], &r) }); n != 0 {
		t.Errorf("appendRecord allocates %v times, want 0", n)
	}
}

func TestSuffixOf(t *testing.T) {
	for in, want := range map[string]string{"ASIAIOSFODNN7EXAMPLE": "MPLE", "abc": "abc", "": "", "abcd": "abcd"} {
		if got := SuffixOf(in).String(); got != want {
			t.Errorf("SuffixOf(%q) = %q, want %q", in, got, want)
		}
	}
	if !SuffixOf("").IsZero() || SuffixOf("x").IsZero() {
		t.Error("IsZero() wrong")
	}
}

func TestNewTokenID(t *testing.T) {
	for in, ok := range map[string]bool{
		"0123456789ab": true, "f": true, "0123456789abcdef": true,
		"": false, "0123456789abcdef0": false, "0123456789AB": false, "xyz": false,
	} {
		id, err := NewTokenID(in)
		if (err == nil) != ok || (ok && id.String() != in) {
			t.Errorf("NewTokenID(%q) = %q, %v; want ok %v", in, id, err, ok)
		}
	}
}

func BenchmarkAppendRecord(b *testing.B) {
	r := Record{
		Time: time.Now(), Listener: "imds", Role: "deploy", Decision: Allowed, Reason: "allowed", Status: 200,
		Peer: netip.MustParseAddrPort("127.0.0.1:40000"), UID: 1001, User: "alice", PID: 42, Exe: "/usr/bin/aws",
		Key: SuffixOf("ASIAIOSFODNN7EXAMPLE"),
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendRecord(buf[:0], &r)
	}
}
