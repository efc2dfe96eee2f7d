//go:build !windows

package daemon

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyHangup delivers SIGHUP, the reload request, to c.
func notifyHangup(c chan<- os.Signal) { signal.Notify(c, syscall.SIGHUP) }
