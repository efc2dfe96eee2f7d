package install

import (
	"context"
	"net/netip"
)

// AddAlias adds ip as a single-host address (/32, /128) on the loopback
// interface lo with iproute2's `ip`, unless it is already there. It needs
// CAP_NET_ADMIN (root) except when there is nothing to do. Only IPv4
// link-local and IPv6 unique-local addresses are accepted.
func AddAlias(ctx context.Context, run Runner, ip netip.Addr) error {
	ip, err := checkAlias(ip)
	if err != nil {
		return err
	}
	return applyAlias(ctx, run, opAdd, ip, linuxPlan(ip))
}

// RemoveAlias removes the single-host address ip from lo; an absent address
// is success. An address of the same IP with a wider prefix, which imdsd
// never adds, is left alone.
func RemoveAlias(ctx context.Context, run Runner, ip netip.Addr) error {
	ip, err := checkAlias(ip)
	if err != nil {
		return err
	}
	return applyAlias(ctx, run, opRemove, ip, linuxPlan(ip))
}
