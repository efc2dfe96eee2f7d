package install

import (
	"context"
	"net/netip"
)

// alias adds or removes ip as a single-host alias (netmask
// 255.255.255.255, prefixlen 128) on lo0 with ifconfig. Adding needs root
// unless the alias is there already. macOS forgets aliases at reboot; the
// LaunchDaemon adds it again at each start.
func alias(ctx context.Context, run Runner, op aliasOp, ip netip.Addr) error {
	return applyAlias(ctx, run, op, ip, darwinPlan(ip))
}
