package daemon

import (
	"fmt"
	"net"
	"syscall"
)

// peerUID returns the uid of the process at the other end of a unix
// socket connection: the one that created the listening socket
// (SO_PEERCRED).
func peerUID(conn net.Conn) (uid uint32, known bool, err error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return 0, false, nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, false, err
	}
	var cred *syscall.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, false, err
	}
	if serr != nil {
		return 0, false, fmt.Errorf("SO_PEERCRED: %w", serr)
	}
	return cred.Uid, true, nil
}
