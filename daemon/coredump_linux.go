package daemon

import (
	"errors"
	"fmt"
	"syscall"
)

// disableCoreDumps keeps a crash of this process from writing its memory,
// and with it the credentials it holds, to disk. Call it first thing in
// imdsd run, before any secret is read.
//
// RLIMIT_CORE 0 (soft and hard, so it cannot be raised again; children
// such as mfa_command inherit it) stops core files, and systemd-coredump
// stores nothing for a process whose limit is 0. Not dumpable
// (PR_SET_DUMPABLE 0) also stops pipe handlers that ignore the limit
// (apport with fs.suid_dumpable=2) and keeps other processes of the same
// user from attaching with ptrace or reading /proc/PID/mem, environ, maps
// and fd: those files become root's. imdsd itself still reads its own
// /proc/self (the kernel always lets a process inspect itself), root still
// can, and /proc/PID/status and limits stay readable by everyone.
func disableCoreDumps() error {
	var errs []error
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{}); err != nil {
		errs = append(errs, fmt.Errorf("set RLIMIT_CORE to 0: %w", err))
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_DUMPABLE, 0, 0); e != 0 {
		errs = append(errs, fmt.Errorf("prctl PR_SET_DUMPABLE 0: %w", e))
	}
	return errors.Join(errs...)
}
