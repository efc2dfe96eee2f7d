package daemon

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// imdsd run disables its own core dumps before it reads any secret: the
// running binary has a core size limit of 0 and is not dumpable.
func TestRunDisablesCoreDumps(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	// As root, run imdsd as nobody: only then does "not dumpable" show, as
	// /proc/PID files owned by root instead of the process's user.
	dir, err := os.MkdirTemp("", "imdsd-core-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Sticky, as /tmp: the admin socket's parent may be world-writable
	// only so (imdsd refuses any other directory another user could
	// write).
	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "imdsd")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/imdsd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "run", "--listen", "127.0.0.1:0", "--admin-socket", filepath.Join(dir, "admin", "admin.sock"), "--log-format", "json")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	user := uint32(os.Geteuid())
	if user == 0 {
		user = 65534
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: user, Gid: 65534}}
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("imdsd run after SIGTERM: %v", err)
		}
	}()
	// Serving: the export line.
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || !strings.HasPrefix(line, "export ") {
		t.Fatalf("imdsd run printed %q (%v), want the export line; stderr:\n%s", line, err, stderr.String())
	}
	pid := cmd.Process.Pid
	if got := coreLimit(t, pid); got != "0 0 bytes" {
		t.Errorf("core file size limit of imdsd run = %q, want \"0 0 bytes\"", got)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/environ", pid), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 0 {
		t.Errorf("/proc/PID/environ of imdsd run (uid %d) owned by uid %d, want 0 (not dumpable)", user, st.Uid)
	}
}
