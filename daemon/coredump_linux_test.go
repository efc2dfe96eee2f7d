package daemon

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// coreDumpChild, set in the environment, makes this test binary the child
// of TestDisableCoreDumps: it disables its core dumps and waits.
const coreDumpChild = "IMDSD_TEST_COREDUMP_CHILD"

// After disableCoreDumps a process has a core size limit of 0, soft and
// hard, and is not dumpable, as seen from another process.
func TestDisableCoreDumps(t *testing.T) {
	if os.Getenv(coreDumpChild) == "1" {
		if err := disableCoreDumps(); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		d, _, _ := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_GET_DUMPABLE, 0, 0)
		fmt.Printf("dumpable %d\n", d)
		_, _ = io.Copy(io.Discard, os.Stdin) // until the parent is done
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDisableCoreDumps$")
	cmd.Env = append(os.Environ(), coreDumpChild+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("child: %v", err)
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "dumpable 0\n" {
		t.Fatalf("child said %q (%v), want \"dumpable 0\"", line, err)
	}
	if got := coreLimit(t, cmd.Process.Pid); got != "0 0 bytes" {
		t.Errorf("core file size limit of the child = %q, want \"0 0 bytes\"", got)
	}
	// Not dumpable: the kernel gives the child's /proc files to root, so
	// another process of the same user cannot read its memory or
	// environment. (As root the owner was root anyway.)
	if uid := os.Geteuid(); uid != 0 {
		var st syscall.Stat_t
		if err := syscall.Stat(fmt.Sprintf("/proc/%d/environ", cmd.Process.Pid), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 0 {
			t.Errorf("/proc/PID/environ of the child owned by uid %d, want 0 (not dumpable)", st.Uid)
		}
	}
}

// coreLimit reads the "Max core file size" of pid: soft, hard and unit.
func coreLimit(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Max core file size"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	t.Fatalf("no core file size in /proc/%d/limits:\n%s", pid, b)
	return ""
}
