//go:build !linux && !darwin && !windows

package install

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
)

// AddAlias is not implemented on this OS: imdsd run still works on a
// loopback address and port of your choice.
func AddAlias(ctx context.Context, run Runner, ip netip.Addr) error {
	return fmt.Errorf("add alias %s on %s: %w", ip, runtime.GOOS, errors.ErrUnsupported)
}

// RemoveAlias is not implemented on this OS.
func RemoveAlias(ctx context.Context, run Runner, ip netip.Addr) error {
	return fmt.Errorf("remove alias %s on %s: %w", ip, runtime.GOOS, errors.ErrUnsupported)
}
