package imds

import (
	"fmt"
	"net/netip"
	"strings"
)

// Allowed Host names: the DNS-rebinding guard (hostAllowed) accepts IP
// literals that name the endpoint, loopback and localhost. A client that
// reaches imdsd by a name of its own network (a compose service name such
// as http://imdsd:8169/, a container's DNS name on a user-defined network)
// sends that name in Host; Config.AllowedHosts lists such names, and
// addresses that reach imdsd through a translation (a published port) that
// the connection's own address does not show.
//
// Only exact names are accepted, never patterns: a rebinding attack needs
// the victim's browser to send a name the attacker controls, so a name on
// the list must be one that resolves only inside the client's network. A
// wildcard would let in every name under it.

// ParseAllowedHost checks one entry of Config.AllowedHosts and returns it
// in the form the Host check compares: a host name in lower case, or an IP
// address without brackets or zone. Every refusal names the problem and the
// fix.
func ParseAllowedHost(s string) (string, error) {
	fail := func(rule string) (string, error) {
		return "", fmt.Errorf("allowed_hosts: %s (got %q)", rule, clip(s))
	}
	switch {
	case s == "":
		return fail("must be a host name such as imdsd or an IP address, not empty")
	case strings.Contains(s, "://") || strings.ContainsAny(s, "/?#@"):
		return fail("must be a host name such as imdsd or an IP address, not a URL; give only the host part")
	case strings.ContainsAny(s, "*"):
		return fail("must be an exact host name: patterns would let DNS-rebinding names through; list each name")
	}
	h, bracketed := s, strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]")
	if bracketed {
		h = h[1 : len(h)-1]
	}
	a, err := netip.ParseAddr(h)
	if bracketed && (err != nil || !a.Is6()) {
		return fail("must have brackets only around an IPv6 address, such as [fd00::5] or fd00::5")
	}
	if err == nil {
		switch {
		case a.Zone() != "":
			return fail("must be an IP address without a zone")
		case a.Unmap().IsUnspecified():
			return fail("must be an address clients connect to; 0.0.0.0 and :: name no host")
		}
		return a.Unmap().String(), nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return fail("must be an address without a port: the Host check ignores ports; give " + ap.Addr().String())
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.Count(s, ":") == 1 {
		return fail("must be a host name without a port: the Host check ignores ports; give " + clip(s[:i]))
	}
	if len(h) > 253 {
		return fail("must be a host name of at most 253 characters")
	}
	for label := range strings.SplitSeq(h, ".") {
		if !validLabel(label) {
			return fail("must be a host name of letters, digits, hyphens, underscores and dots, each label 1..63 characters and not starting or ending with a hyphen, such as imdsd or imdsd.internal")
		}
	}
	return strings.ToLower(h), nil
}

// validLabel reports whether l is a DNS label of letters, digits and
// hyphens (underscores too, which container engines allow in names),
// 1..63 characters, not starting or ending with a hyphen.
func validLabel(l string) bool {
	if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// allowedHostSet is the parsed Config.AllowedHosts: names in lower case,
// addresses unmapped. Nil when none are configured.
type allowedHostSet map[string]bool

func newAllowedHostSet(hosts []string) allowedHostSet {
	if len(hosts) == 0 {
		return nil
	}
	m := make(allowedHostSet, len(hosts))
	for _, s := range hosts {
		if h, err := ParseAllowedHost(s); err == nil {
			m[h] = true
		}
	}
	return m
}

// has reports whether host, as it appears in a Host header without its
// port, is on the list. Names compare without regard to case.
func (m allowedHostSet) has(host string) bool {
	if len(m) == 0 {
		return false
	}
	if m[host] {
		return true
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return m[a.Unmap().String()]
	}
	return m[strings.ToLower(host)]
}
