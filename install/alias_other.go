//go:build !linux && !darwin && !windows

package install

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
)

// alias is not implemented on this OS: imdsd run still works on a loopback
// address and port of your choice.
func alias(ctx context.Context, run Runner, op aliasOp, ip netip.Addr) error {
	return fmt.Errorf("%s alias %s on %s: %w", op, ip, runtime.GOOS, errors.ErrUnsupported)
}
