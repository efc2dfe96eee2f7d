package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProfile: profiles are off until debug_pprof turns them on (a reload
// does), and then imdsd profile saves one that go tool pprof can read.
func TestProfile(t *testing.T) {
	c := defaultConfig()
	td := startDaemon(t, c, &flaky{})
	dir := t.TempDir()
	heap := filepath.Join(dir, "heap.pprof")

	code, _, errOut := td.cli(t.Context(), "profile", "heap", "-o", heap)
	if code != exitError || !strings.Contains(errOut, "profiling is off: set debug_pprof: true in the config file and run imdsd reload") {
		t.Errorf("profile with debug_pprof off: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(heap); err == nil {
		t.Error("a refused profile left a file")
	}

	on, _ := td.d.current()
	on.DebugPprof = true
	td.reloadTo(on, &flaky{}, nil)
	if code, out, errOut := td.cli(t.Context(), "reload"); code != 0 {
		t.Fatalf("reload: exit %d, %q %q", code, out, errOut)
	}
	code, out, errOut := td.cli(t.Context(), "profile", "heap", "-o", heap)
	if code != 0 || !strings.Contains(out, "wrote "+heap) {
		t.Fatalf("profile heap: exit %d, %q %q", code, out, errOut)
	}
	b, err := os.ReadFile(heap)
	// A profile is gzipped protobuf.
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("heap profile: %v, %d bytes, want gzip", err, len(b))
	}
	if fi, _ := os.Stat(heap); fi.Mode().Perm() != 0o600 {
		t.Errorf("profile mode %v, want 0600", fi.Mode().Perm())
	}
	cpu := filepath.Join(dir, "cpu.pprof")
	if code, _, errOut := td.cli(t.Context(), "profile", "cpu", "--seconds", "1", "-o", cpu); code != 0 {
		t.Errorf("profile cpu: exit %d, %q", code, errOut)
	}

	for _, args := range [][]string{{"profile"}, {"profile", "disk"}, {"profile", "cpu", "--seconds", "0"}, {"profile", "cpu", "heap"}} {
		if code, _, errOut := td.cli(t.Context(), args...); code != exitUsage || !strings.Contains(errOut, "imdsd profile") {
			t.Errorf("%v: exit %d, %q; want usage", args, code, errOut)
		}
	}
}
