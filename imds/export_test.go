package imds

import "time"

// KernelWriteBound tells the tests whether the kernel bounds writes here
// (writebound_linux.go) instead of net/http's WriteTimeout.
const KernelWriteBound = kernelWriteBound

// SetWriteBound sets the write bound of servers made from now on, until
// the returned restore runs.
func SetWriteBound(d time.Duration) (restore func()) {
	old := writeBound
	writeBound = d
	return func() { writeBound = old }
}
