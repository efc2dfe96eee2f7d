package rotator

import (
	"context"
	"os/exec"
	"syscall"
)

// shellCommand runs command with cmd.exe /C. The command line is given
// verbatim (SysProcAttr.CmdLine): Go's argument quoting follows the C runtime
// rules, which cmd.exe does not, so a command with quotes would arrive
// mangled. /S makes cmd strip exactly the outer pair of quotes we add.
// Cancellation uses the default Process.Kill.
func shellCommand(ctx context.Context, command string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "cmd.exe")
	cmd.SysProcAttr = &syscall.SysProcAttr{CmdLine: `cmd.exe /S /C "` + command + `"`}
	return cmd
}
