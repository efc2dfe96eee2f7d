//go:build unix && !linux && !aix

package daemon

import (
	"fmt"
	"syscall"
)

// disableCoreDumps keeps a crash of this process from writing its memory,
// and with it the credentials it holds, to disk. Call it first thing in
// imdsd run, before any secret is read.
//
// RLIMIT_CORE 0 (soft and hard, so it cannot be raised again; children
// inherit it) stops the kernel's core files (macOS /cores, the BSDs'
// PROG.core). macOS's crash reporter writes backtraces, not memory.
func disableCoreDumps() error {
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{}); err != nil {
		return fmt.Errorf("set RLIMIT_CORE to 0: %w", err)
	}
	return nil
}
