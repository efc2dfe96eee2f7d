package install

import (
	"context"
	"net/netip"
)

// AddAlias adds ip as a single-host address (mask 255.255.255.255, /128)
// on the loopback pseudo-interface with netsh, found by its index, unless
// it is already there. The address is persistent: it survives reboots until
// RemoveAlias. It needs an elevated (administrator) process except when
// there is nothing to do. Only IPv4 link-local and IPv6 unique-local
// addresses are accepted.
func AddAlias(ctx context.Context, run Runner, ip netip.Addr) error {
	ip, err := checkAlias(ip)
	if err != nil {
		return err
	}
	return windowsAlias(ctx, run, opAdd, ip)
}

// RemoveAlias removes the address ip from the loopback pseudo-interface; an
// absent address is success.
func RemoveAlias(ctx context.Context, run Runner, ip netip.Addr) error {
	ip, err := checkAlias(ip)
	if err != nil {
		return err
	}
	return windowsAlias(ctx, run, opRemove, ip)
}
