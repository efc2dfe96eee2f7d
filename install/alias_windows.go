package install

import (
	"context"
	"net/netip"
)

// alias adds or removes ip (mask 255.255.255.255, /128) on the loopback
// pseudo-interface with netsh, found by its index. The address is
// persistent: it survives reboots until removed. Adding needs an elevated
// (administrator) process unless the address is there already.
func alias(ctx context.Context, run Runner, op aliasOp, ip netip.Addr) error {
	return windowsAlias(ctx, run, op, ip)
}
