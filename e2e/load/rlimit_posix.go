//go:build linux || darwin

package main

import (
	"fmt"
	"syscall"
)

// raiseNoFile lets this process open need files where it may: the soft
// limit goes up to need (Go already raised it to the hard limit), the hard
// limit too where allowed (root with CAP_SYS_RESOURCE). Otherwise it says
// how far it got: connections beyond the limit fail, and are counted.
func raiseNoFile(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= need {
		return nil
	}
	if lim.Max < need {
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: need, Max: need}) == nil {
			return nil
		}
		return fmt.Errorf("open-file limit %d is below the %d this run may need and cannot be raised: connections beyond it fail (raise it with ulimit -Hn as root)", lim.Max, need)
	}
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: need, Max: lim.Max})
}
