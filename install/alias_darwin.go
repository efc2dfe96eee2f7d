package install

import (
	"context"
	"net/netip"
)

// AddAlias adds ip as a single-host alias (netmask 255.255.255.255,
// prefixlen 128) on lo0 with ifconfig, unless it is already there. It needs
// root except when there is nothing to do. macOS forgets the alias at
// reboot; the LaunchDaemon adds it again at each start. Only IPv4
// link-local and IPv6 unique-local addresses are accepted.
func AddAlias(ctx context.Context, run Runner, ip netip.Addr) error {
	ip, err := checkAlias(ip)
	if err != nil {
		return err
	}
	return applyAlias(ctx, run, opAdd, ip, darwinPlan(ip))
}

// RemoveAlias removes the alias ip from lo0; an absent alias is success.
func RemoveAlias(ctx context.Context, run Runner, ip netip.Addr) error {
	ip, err := checkAlias(ip)
	if err != nil {
		return err
	}
	return applyAlias(ctx, run, opRemove, ip, darwinPlan(ip))
}
