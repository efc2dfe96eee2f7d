package e2e

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel send SIGKILL to cmd's process when the test
// binary dies (a panic or -timeout), so no imdsd outlives the suite.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
