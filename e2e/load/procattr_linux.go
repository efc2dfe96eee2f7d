package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel send SIGKILL to cmd's process if the load
// run dies without stopping it, so no server outlives the run.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
