package audit_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsd/imdsd/audit"
	"github.com/rs/zerolog"
)

// cmpRecord compares records: times by instant, the rest by value.
var cmpRecord = cmp.Options{
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }),
	cmp.Comparer(func(a, b audit.KeySuffix) bool { return a == b }),
	cmp.Comparer(func(a, b audit.TokenID) bool { return a == b }),
}

func tokenID(t testing.TB, s string) audit.TokenID {
	t.Helper()
	id, err := audit.NewTokenID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// sample returns record i: alternately an allowed IMDS answer with a known
// process, and a refused container request of an unknown caller.
func sample(t testing.TB, i int) audit.Record {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	if i%2 == 0 {
		return audit.Record{
			Time: at, Listener: "imds", Role: "deploy", Decision: audit.Allowed, Reason: "allowed", Status: 200,
			Peer: netip.MustParseAddrPort("127.0.0.1:51234"), UID: 1001, User: "alice",
			PID: 1000 + i, Exe: "/usr/local/bin/terraform", Key: audit.SuffixOf("ASIAIOSFODNN7EXAMPLE"),
		}
	}
	return audit.Record{
		Time: at, Listener: "container", Role: "ci", Decision: audit.Refused, Reason: "unknown_caller", Status: 403,
		Peer: netip.MustParseAddrPort("[::ffff:10.88.0.5]:40000"), UID: -1, PID: 1000 + i,
		Token: tokenID(t, "0123456789ab"),
	}
}

func readAll(t testing.TB, path string) []audit.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, bad, err := audit.Last(f, 0, audit.Filter{})
	if err != nil || bad != 0 {
		t.Fatalf("read %s: %d bad lines, %v", path, bad, err)
	}
	return recs
}

func mode(t testing.TB, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestWriteAndRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := audit.Open(audit.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	var want []audit.Record
	for i := range 10 {
		r := sample(t, i)
		if !w.Write(r) {
			t.Fatalf("Write(%d) dropped", i)
		}
		want = append(want, r)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, readAll(t, path), cmpRecord); diff != "" {
		t.Errorf("records read back (-want +got):\n%s", diff)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("audit log mode = %v, want 0600", m)
	}
	if got, want := w.Stats(), (audit.Stats{Written: 10}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
}

func TestWriteSetsTime(t *testing.T) {
	var b bytes.Buffer
	w, err := audit.Open(audit.Options{Out: &b})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	w.Write(audit.Record{Role: "r", Decision: audit.Allowed, UID: -1})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, _, err := audit.Last(&b, 0, audit.Filter{})
	if err != nil || len(recs) != 1 || recs[0].Time.Before(before.Truncate(time.Second)) || recs[0].UID != -1 {
		t.Errorf("records = %+v, %v; want one stamped now, uid unknown", recs, err)
	}
}

func TestExistingFileMadePrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte(""), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := audit.Open(audit.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if m := mode(t, path); m != 0o600 {
		t.Errorf("audit log mode = %v, want 0600", m)
	}
}

// A burst from many goroutines that fits the queue loses no line, however
// the writer goroutine is scheduled.
func TestBurstWithinQueueLosesNothing(t *testing.T) {
	const writers, each = 8, 256
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := audit.Open(audit.Options{Path: path, Queue: writers * each})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				r := sample(t, 0)
				r.PID = g*each + i + 1
				if !w.Write(r) {
					t.Errorf("Write() dropped record %d", r.PID)
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, r := range readAll(t, path) {
		seen[r.PID] = true
	}
	if len(seen) != writers*each {
		t.Errorf("%d distinct records in the file, want %d", len(seen), writers*each)
	}
	if s := w.Stats(); s.Dropped != 0 || s.Written != writers*each {
		t.Errorf("Stats() = %+v, want %d written, none dropped", s, writers*each)
	}
}

// At the load script's rate (BENCHMARKS.md: about 58,000 credentials
// answers a second on one core), in bursts of 1,000 every 16 ms for half
// a second, with the default queue, to a real file: no line is lost.
func TestLoadRateLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("paced for half a second")
	}
	const bursts, each = 30, 1000
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := audit.Open(audit.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(16 * time.Millisecond)
	defer tick.Stop()
	r := sample(t, 0)
	for range bursts {
		for range each {
			w.Write(r)
		}
		<-tick.C
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if s := w.Stats(); s != (audit.Stats{Written: bursts * each}) {
		t.Errorf("Stats() = %+v, want all %d written", s, bursts*each)
	}
	if n := len(readAll(t, path)); n != bursts*each {
		t.Errorf("%d lines in the file, want %d", n, bursts*each)
	}
}

// blockingWriter stands for a stalled disk: its first Write signals
// entered and waits for release.
type blockingWriter struct {
	entered, release chan struct{}
	once             sync.Once
	mu               sync.Mutex
	buf              bytes.Buffer
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	b.once.Do(func() {
		close(b.entered)
		<-b.release
	})
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// syncBuffer is a log sink safe for the writer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// With the disk stalled, Write keeps returning at once: the queue fills,
// then records are dropped, counted and reported once in the log.
func TestFullQueueCountedNeverBlocks(t *testing.T) {
	const queue = 4
	out := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	var logs syncBuffer
	w, err := audit.Open(audit.Options{Out: out, Queue: queue, Log: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(sample(t, 0))
	<-out.entered // the goroutine holds record 0 and is stuck writing it

	done := make(chan []bool)
	go func() {
		var got []bool
		for i := 1; i <= queue+3; i++ {
			got = append(got, w.Write(sample(t, i)))
		}
		done <- got
	}()
	var got []bool
	select {
	case got = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Write blocked on a stalled disk")
	}
	want := []bool{true, true, true, true, false, false, false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Write() results (-want +got):\n%s", diff)
	}
	if s := w.Stats(); s.Dropped != 3 {
		t.Errorf("Stats().Dropped = %d, want 3", s.Dropped)
	}
	if n := strings.Count(logs.String(), "audit record dropped"); n != 1 {
		t.Errorf("drop logged %d times, want once (rate-limited):\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), `"dropped_total":1`) {
		t.Errorf("drop log lacks the count:\n%s", logs.String())
	}
	close(out.release)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.buf.String(), "\n"); n != 1+queue {
		t.Errorf("%d lines written, want %d", n, 1+queue)
	}
	if s := w.Stats(); s != (audit.Stats{Written: 1 + queue, Dropped: 3}) {
		t.Errorf("Stats() = %+v", s)
	}
}

// logrotate renames the file and sends SIGHUP: Reopen sends what follows
// to a new file at the path; what came before stays in the renamed one.
func TestReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	w, err := audit.Open(audit.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 3 {
		w.Write(sample(t, i))
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := w.Reopen(); err != nil {
		t.Fatalf("Reopen() = %v", err)
	}
	for i := 3; i < 5; i++ {
		w.Write(sample(t, i))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(readAll(t, path+".1")); n != 3 {
		t.Errorf("rotated file has %d records, want 3", n)
	}
	after := readAll(t, path)
	if len(after) != 2 || after[0].PID != 1003 {
		t.Errorf("new file has %+v, want records 3 and 4", after)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("new file mode = %v, want 0600", m)
	}
}

// A path that can no longer be opened keeps the Writer on its old file.
func TestReopenFailureKeepsFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.log")
	w, err := audit.Open(audit.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(sample(t, 0))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	// Someone puts a symlink where the log was.
	if err := os.Symlink("/etc/passwd", path); err != nil {
		t.Fatal(err)
	}
	err = w.Reopen()
	var pe *audit.PathError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "is a symbolic link") {
		t.Errorf("Reopen() onto a symlink = %v, want a PathError", err)
	}
	w.Write(sample(t, 1))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(readAll(t, path+".1")); n != 2 {
		t.Errorf("old file has %d records, want both", n)
	}
}

func TestWriteAfterClose(t *testing.T) {
	w, err := audit.Open(audit.Options{Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Write(sample(t, 0)) {
		t.Error("Write() after Close = true, want dropped")
	}
	if s := w.Stats(); s.Dropped != 1 {
		t.Errorf("Stats().Dropped = %d, want 1", s.Dropped)
	}
	if err := w.Reopen(); err != nil {
		t.Errorf("Reopen() of Out = %v, want nil", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

func TestWriteFailureCounted(t *testing.T) {
	var logs syncBuffer
	w, err := audit.Open(audit.Options{Out: failingWriter{}, Log: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		w.Write(sample(t, i))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if s := w.Stats(); s.Failed != 3 || s.Written != 0 {
		t.Errorf("Stats() = %+v, want 3 failed", s)
	}
	if n := strings.Count(logs.String(), "audit log write failed"); n != 1 {
		t.Errorf("failure logged %d times, want once:\n%s", n, logs.String())
	}
}

// Never a secret: the record types cannot hold one, and a test greps
// both outputs for the fake credentials of the request that was served.
func TestNoSecretInOutput(t *testing.T) {
	const (
		akid   = "ASIAIOSFODNN7EXAMPLE"
		secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
		token  = "IQoJb3JpZ2luX2VjEHoaCXVzLWVhc3QtMSJHMEUCIQDtokenSECRET"
		ctoken = "kJ2S8q3fBz0iTQ4mW7yXcN1vLp6uHd5gRa9eOt_Zs-E" // a container token
	)
	if _, err := audit.NewTokenID(ctoken); !errors.Is(err, audit.ErrNotTokenID) {
		t.Errorf("NewTokenID(a token) error = %v, want ErrNotTokenID", err)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	var logs syncBuffer
	w, err := audit.Open(audit.Options{Path: path, Log: zerolog.New(&logs), Echo: true})
	if err != nil {
		t.Fatal(err)
	}
	r := sample(t, 0)
	r.Key = audit.SuffixOf(akid)
	w.Write(r)
	r.Key = audit.SuffixOf(secret) // even a secret passed by mistake is cut
	w.Write(r)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"file": string(file), "service log": logs.String()} {
		for _, s := range []string{akid, akid[:16], secret, secret[:20], token, ctoken} {
			if strings.Contains(out, s) {
				t.Errorf("%s contains %q:\n%s", name, s, out)
			}
		}
		if !strings.Contains(out, `"access_key_id_last4":"MPLE"`) {
			t.Errorf("%s lacks the key's last 4:\n%s", name, out)
		}
	}
}

func TestEchoOnly(t *testing.T) {
	var logs syncBuffer
	w, err := audit.Open(audit.Options{Log: zerolog.New(&logs), Echo: true})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(sample(t, 1))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"message":"audit"`, `"role":"ci"`, `"decision":"refused"`, `"reason":"unknown_caller"`, `"container_token_id":"0123456789ab"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("service log lacks %s:\n%s", want, logs.String())
		}
	}
	if s := w.Stats(); s.Written != 1 {
		t.Errorf("Stats() = %+v, want 1 written", s)
	}
}

func TestValidatePath(t *testing.T) {
	root := t.TempDir()
	mk := func(name string, perm os.FileMode) string {
		p := filepath.Join(root, name)
		if err := os.Mkdir(p, perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, perm); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	good := mk("good", 0o750)
	open := mk("open", 0o777)
	sticky := mk("sticky", 0o777|os.ModeSticky)
	under := filepath.Join(sticky, "mine")
	if err := os.Mkdir(under, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", filepath.Join(good, "link.log")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(good, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(good, "file"), filepath.Join(good, "hard.log")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(good, "dir.log"), 0o700); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, path, want string }{
		{"ok", filepath.Join(good, "audit.log"), ""},
		{"ok under a sticky world-writable directory", filepath.Join(under, "audit.log"), ""},
		{"relative", "audit.log", `audit_log: must be an absolute path (got "audit.log")`},
		{"missing directory", filepath.Join(root, "nope", "audit.log"),
			fmt.Sprintf("audit_log: directory %s does not exist (got %q)", filepath.Join(root, "nope"), filepath.Join(root, "nope", "audit.log"))},
		{"directory is a file", filepath.Join(good, "file", "audit.log"),
			fmt.Sprintf("audit_log: %s is not a directory (got %q)", filepath.Join(good, "file"), filepath.Join(good, "file", "audit.log"))},
		{"world-writable directory", filepath.Join(open, "audit.log"),
			fmt.Sprintf("audit_log: directory %s is writable by every user: another user could replace the file (got %q)", open, filepath.Join(open, "audit.log"))},
		{"world-writable even with the sticky bit", filepath.Join(sticky, "audit.log"),
			fmt.Sprintf("audit_log: directory %s is writable by every user: another user could replace the file (got %q)", sticky, filepath.Join(sticky, "audit.log"))},
		{"symlink", filepath.Join(good, "link.log"),
			fmt.Sprintf("audit_log: is a symbolic link; name the file itself (got %q)", filepath.Join(good, "link.log"))},
		{"hard link", filepath.Join(good, "hard.log"),
			fmt.Sprintf("audit_log: has other hard links; remove them or choose another file (got %q)", filepath.Join(good, "hard.log"))},
		{"a directory", filepath.Join(good, "dir.log"),
			fmt.Sprintf("audit_log: is not a regular file (got %q)", filepath.Join(good, "dir.log"))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := audit.ValidatePath(tc.path)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("ValidatePath() = %q, want %q", got, tc.want)
			}
			if tc.want == "" {
				return
			}
			if _, err := audit.Open(audit.Options{Path: tc.path}); err == nil || err.Error() != tc.want {
				t.Errorf("Open() = %v, want %q", err, tc.want)
			}
		})
	}
}

// A directory of another user (not root) is refused: it could swap the
// file. Needs root to make one.
func TestValidatePathOtherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chowns a directory to uid 4321")
	}
	dir := filepath.Join(t.TempDir(), "theirs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 4321, 4321); err != nil {
		t.Fatal(err)
	}
	err := audit.ValidatePath(filepath.Join(dir, "audit.log"))
	if err == nil || !strings.Contains(err.Error(), "belongs to uid 4321, neither root nor imdsd's user") {
		t.Errorf("ValidatePath() = %v, want refused for its owner", err)
	}
}

// BenchmarkWrite: the cost a request pays to audit its answer.
func BenchmarkWrite(b *testing.B) {
	w, err := audit.Open(audit.Options{Out: io.Discard, Queue: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	r := sample(b, 0)
	b.ReportAllocs()
	for b.Loop() {
		w.Write(r)
	}
	b.StopTimer()
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	s := w.Stats()
	b.ReportMetric(float64(s.Dropped), "dropped")
}

// BenchmarkWriteFile: what the writer goroutine sustains, encoding and
// writing to a real file: the queue holds every record, Close included.
func BenchmarkWriteFile(b *testing.B) {
	w, err := audit.Open(audit.Options{Path: filepath.Join(b.TempDir(), "audit.log"), Queue: 1 << 21})
	if err != nil {
		b.Fatal(err)
	}
	r := sample(b, 0)
	b.ReportAllocs()
	t0 := time.Now()
	for b.Loop() {
		w.Write(r)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	s := w.Stats()
	b.ReportMetric(float64(time.Since(t0).Nanoseconds())/float64(s.Written), "ns/line-written")
	b.ReportMetric(float64(s.Dropped), "dropped")
}
