package imds

import (
	"errors"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// kernelWriteBound: on Linux the kernel bounds a connection's writes.
//
// A client that stops reading fills its receive window and then imdsd's
// send buffer, and the next write blocks its connection's goroutine.
// TCP_USER_TIMEOUT makes the kernel abort the connection once written data
// has waited writeBound without being acknowledged, or without being sent
// because the peer's window stayed shut (tcp(7)); the blocked write then
// fails and the goroutine ends, as with a write deadline.
const kernelWriteBound = true

// writeBound is the longest a write may wait on the peer (a variable for
// the tests).
var writeBound = WriteTimeout

// boundWrites sets TCP_USER_TIMEOUT on c to d.
func boundWrites(c net.Conn, d time.Duration) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return errors.New("not a socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Milliseconds()))
	}); err != nil {
		return err
	}
	return serr
}
