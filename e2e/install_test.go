package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGoInstall: go install of ./cmd/imdsd (what go install
// github.com/imdsd/imdsd/cmd/imdsd@VERSION builds, from this tree) gives a
// binary named imdsd that runs, and imdsd install refuses to make a
// service of it where it lies (a temporary directory), saying where to
// put it.
func TestGoInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds imdsd")
	}
	// Under /tmp whatever TMPDIR says: the refusal below is about /tmp.
	gobin, err := os.MkdirTemp("/tmp", "imdsd-goinstall-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(gobin) })
	cmd := exec.Command("go", "install", "./cmd/imdsd")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go install: %v\n%s", err, out)
	}
	bin := filepath.Join(gobin, "imdsd")
	out, err = exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "imdsd dev\n") || !strings.Contains(string(out), "go:     go1.") {
		t.Errorf("imdsd version: %v\n%s", err, out)
	}
	// The dry run changes nothing and says what install would refuse.
	out, _ = exec.Command(bin, "install", "--dry-run", "--", "--source", "dev").CombinedOutput()
	if want := bin + ": the service cannot run a program under /tmp"; !strings.Contains(string(out), "would refuse") ||
		!strings.Contains(string(out), want) || !strings.Contains(string(out), "copy imdsd to /usr/local/bin") {
		t.Errorf("imdsd install --dry-run of a binary in %s: want the refusal %q and its fix\n%s", gobin, want, out)
	}
}
