//go:build unix

package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// listenFDsStart is the first file descriptor systemd passes (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// inheritedListeners takes over the listening sockets systemd passed for
// socket activation (sd_listen_fds(3)): when LISTEN_PID is this process and
// LISTEN_FDS ≥ 1, file descriptors 3…3+LISTEN_FDS-1. It returns them keyed
// by their address as net.Listener.Addr().String() gives it
// ("169.254.169.254:80", "[fd00:ec2::254]:80"), so listenAll uses one
// instead of binding a --listen address equal to its key. Every descriptor
// is taken whatever its name in LISTEN_FDNAMES (imdsd.socket names them
// "imds"): imdsd.service has no other socket. It unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, so that
// commands imdsd starts (mfa_command, credential_process) never see them,
// and returns nil without them or when they are meant for another process.
// Call it once, before binding anything.
func inheritedListeners(getenv func(string) string) (map[string]net.Listener, error) {
	pid, fds, names := getenv("LISTEN_PID"), getenv("LISTEN_FDS"), getenv("LISTEN_FDNAMES")
	if pid == "" && fds == "" {
		return nil, nil
	}
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(k)
	}
	if pid != strconv.Itoa(os.Getpid()) {
		return nil, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("socket activation: LISTEN_FDS must be a number ≥ 1 (got %q)", fds)
	}
	nameOf := func(i int) string {
		if l := strings.Split(names, ":"); names != "" && len(l) == n {
			return l[i]
		}
		return ""
	}
	lns := map[string]net.Listener{}
	var errs []error
	for i := range n {
		fd := listenFDsStart + i
		f := os.NewFile(uintptr(fd), "LISTEN_FD_"+strconv.Itoa(fd))
		ln, err := net.FileListener(f) // a duplicate, close-on-exec
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("socket activation: fd %d (%s): not a listening stream socket: %w", fd, nameOf(i), err))
			continue
		}
		addr := ln.Addr().String()
		if lns[addr] != nil {
			ln.Close()
			errs = append(errs, fmt.Errorf("socket activation: fd %d: %s passed twice", fd, addr))
			continue
		}
		lns[addr] = ln
	}
	if err := errors.Join(errs...); err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, err
	}
	return lns, nil
}
