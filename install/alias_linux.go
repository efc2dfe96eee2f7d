package install

import (
	"context"
	"net/netip"
)

// alias adds or removes ip on the loopback interface lo with iproute2's
// ip. Adding needs CAP_NET_ADMIN (root) unless the address is there
// already. Removing leaves alone an address of the same IP with a wider
// prefix, which imdsd never adds.
func alias(ctx context.Context, run Runner, op aliasOp, ip netip.Addr) error {
	return applyAlias(ctx, run, op, ip, linuxPlan(ip))
}
