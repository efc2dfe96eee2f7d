//go:build !linux && !windows

package caller

import (
	"fmt"
	"net/netip"
	"runtime"
)

// Supported is what this OS's lookup tells: nothing. Compile refuses any
// allow list here, so a policy is never silently ignored.
//
// On macOS the socket tables are readable without cgo (sysctl
// net.inet.tcp.pcblist_n gives each socket's so_uid and so_last_pid), and
// the executable through kern.procargs2; that lookup is not written yet:
// it needs a Mac to be tested against, and a misparsed table would name
// the wrong user.
var Supported = Support{}

// System is the caller lookup of this OS: not implemented; every Lookup
// fails with ErrUnsupported.
type System struct{}

// NewSystem returns the lookup of this OS, which fails every lookup.
func NewSystem(Options) (*System, error) { return &System{}, nil }

// Lookup returns ErrUnsupported.
func (*System) Lookup(local, remote netip.AddrPort) (Identity, error) {
	err := fmt.Errorf("look up peer %v of %v on %s: %w", remote, local, runtime.GOOS, ErrUnsupported)
	return Unknown(err), err
}

// Close does nothing.
func (*System) Close() error { return nil }
