package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
)

// Runner runs one command and returns its combined stdout and stderr. Its
// error is non-nil when the command could not start or exited non-zero.
// Tests inject a fake that records argv; ExecRunner is the real one.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// ExecRunner is the Runner of a real host: exec.CommandContext(…).CombinedOutput.
func ExecRunner(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}

// AddAlias adds ip as a single-host address (/32 or /128) to the loopback
// interface (lo on Linux, lo0 on macOS, the loopback pseudo-interface on
// Windows), unless it is there already. Only IPv4 link-local and IPv6
// unique-local addresses are accepted, so a typo cannot take over a real
// address for the whole host. The privilege it needs (root, administrator)
// is only needed when there is something to do.
func AddAlias(ctx context.Context, run Runner, ip netip.Addr) error {
	ip, err := checkAlias(ip)
	if err != nil {
		return err
	}
	return alias(ctx, run, opAdd, ip)
}

// RemoveAlias removes the single-host address ip from the loopback
// interface; an absent address is success.
func RemoveAlias(ctx context.Context, run Runner, ip netip.Addr) error {
	ip, err := checkAlias(ip)
	if err != nil {
		return err
	}
	return alias(ctx, run, opRemove, ip)
}

// aliasOp says whether a plan adds or removes the address.
type aliasOp bool

const (
	opAdd    aliasOp = true
	opRemove aliasOp = false
)

func (o aliasOp) String() string {
	if o == opAdd {
		return "add"
	}
	return "remove"
}

// aliasPlan is everything one OS needs to add or remove one loopback
// address, as plain data. Every OS builds its plan with a pure function
// (linuxPlan, darwinPlan, windowsPlan), so the Linux CI tests all three;
// applyAlias is the one algorithm they share.
type aliasPlan struct {
	add, remove []string // argv: command name first
	// show lists the interface's addresses; present reads its output. The
	// check is what makes the plan idempotent in any locale: the address
	// itself is never translated, the messages around it are.
	show    []string
	present func(out []byte, ip netip.Addr) bool
	// exists and absent are fragments of the answers to adding a present
	// address and removing an absent one, matched case-insensitively: a
	// shortcut past the second check, not the only way to succeed.
	exists, absent []string
	hint           string // the usual fix, for an error
}

// applyAlias makes the address present (opAdd) or absent (opRemove):
//
//  1. show; done if the address is already in the wanted state (so an
//     unprivileged run that has nothing to do succeeds);
//  2. add or remove; done on success or on an answer in exists/absent;
//  3. show again, to accept a localised "already exists" (or a race with
//     another instance); only then fail.
//
// A failing show is not an error by itself: step 2 then decides.
func applyAlias(ctx context.Context, run Runner, op aliasOp, ip netip.Addr, p aliasPlan) error {
	want := op == opAdd
	inState := func() bool {
		out, err := run(ctx, p.show[0], p.show[1:]...)
		return err == nil && p.present(out, ip) == want
	}
	if inState() {
		return nil
	}
	argv, known := p.add, p.exists
	if op == opRemove {
		argv, known = p.remove, p.absent
	}
	out, err := run(ctx, argv[0], argv[1:]...)
	if err == nil || containsAny(out, known) || inState() {
		return nil
	}
	msg := fmt.Sprintf("%s alias %s: %s: %v", op, ip, strings.Join(argv, " "), err)
	if o := oneLine(out); o != "" {
		msg += ": " + o
	}
	if !errors.Is(err, exec.ErrNotFound) && p.hint != "" {
		msg += " (" + p.hint + ")"
	}
	return &aliasError{msg: msg, err: err}
}

// aliasError keeps the command's error for errors.Is/As under a message that
// names the command, its output and the fix.
type aliasError struct {
	msg string
	err error
}

func (e *aliasError) Error() string { return e.msg }
func (e *aliasError) Unwrap() error { return e.err }

func containsAny(out []byte, fragments []string) bool {
	lower := bytes.ToLower(out)
	for _, f := range fragments {
		if bytes.Contains(lower, []byte(strings.ToLower(f))) {
			return true
		}
	}
	return false
}

// oneLine joins the non-blank lines of a command's output with "; ".
func oneLine(out []byte) string {
	var lines []string
	for l := range strings.Lines(string(out)) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// checkAlias refuses what must never be put on a loopback interface: an
// alias shadows that address for the whole host, so only the link-local
// (IPv4, 169.254.0.0/16) and unique-local (IPv6, fc00::/7) ranges the
// metadata endpoints live in are allowed. An IPv4-mapped IPv6 address counts
// as its IPv4 address.
func checkAlias(ip netip.Addr) (netip.Addr, error) {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return ip, errors.New("alias: no address")
	case ip.Zone() != "":
		return ip, fmt.Errorf("alias %s: must not have a zone", ip)
	case ip.Is4() && !ip.IsLinkLocalUnicast(),
		ip.Is6() && !ip.IsPrivate():
		return ip, fmt.Errorf("alias %s: must be IPv4 link-local (169.254.0.0/16) or IPv6 unique-local (fc00::/7)", ip)
	}
	return ip, nil
}

// hostPrefix is the address as a single-host prefix: /32 or /128, the only
// prefixes imdsd ever adds.
func hostPrefix(ip netip.Addr) netip.Prefix {
	return netip.PrefixFrom(ip, ip.BitLen())
}

// linuxAliasArgs is the iproute2 command adding or removing ip on lo. The
// IPv6 address gets nodad: duplicate address detection has nothing to
// detect on loopback and would leave the address "tentative" (unusable) for
// a moment after the step that added it.
func linuxAliasArgs(op aliasOp, ip netip.Addr) []string {
	verb := "add"
	if op == opRemove {
		verb = "del"
	}
	if ip.Is4() {
		return []string{"ip", "addr", verb, hostPrefix(ip).String(), "dev", "lo"}
	}
	argv := []string{"ip", "-6", "addr", verb, hostPrefix(ip).String(), "dev", "lo"}
	if op == opAdd {
		argv = append(argv, "nodad")
	}
	return argv
}

func linuxPlan(ip netip.Addr) aliasPlan {
	family := "-4"
	if ip.Is6() {
		family = "-6"
	}
	return aliasPlan{
		add:     linuxAliasArgs(opAdd, ip),
		remove:  linuxAliasArgs(opRemove, ip),
		show:    []string{"ip", "-o", family, "addr", "show", "dev", "lo"},
		present: linuxPresent,
		// iproute2 prints the kernel's extended ack when there is one
		// ("Error: ipv4: Address already assigned."), else strerror
		// ("RTNETLINK answers: File exists", localised by glibc).
		exists: []string{"File exists", "Address already assigned"},
		absent: []string{"Cannot assign requested address", "Address not found"},
		hint:   "adding an address to lo needs CAP_NET_ADMIN: run as root",
	}
}

// linuxPresent finds "inet 169.254.169.254/32" or "inet6 fd00:ec2::254/128"
// in `ip -o addr show` output: the same address with a wider prefix is a
// different entry to the kernel, so it does not count.
func linuxPresent(out []byte, ip netip.Addr) bool {
	return hasPair(out, []string{"inet", "inet6"}, hostPrefix(ip).String())
}

// hasPair reports whether a key in keys is directly followed by value in the
// whitespace-separated words of out.
func hasPair(out []byte, keys []string, value string) bool {
	words := strings.Fields(string(out))
	for i := 0; i+1 < len(words); i++ {
		for _, k := range keys {
			if words[i] == k && words[i+1] == value {
				return true
			}
		}
	}
	return false
}

// darwinAliasArgs is the ifconfig command adding or removing ip on lo0, in
// the order of ifconfig(8)'s examples (address, then alias or -alias). The
// mask is given with the netmask keyword: a second bare address would be
// read as a destination address.
func darwinAliasArgs(op aliasOp, ip netip.Addr) []string {
	switch {
	case ip.Is4() && op == opAdd:
		return []string{"ifconfig", "lo0", "inet", ip.String(), "netmask", "255.255.255.255", "alias"}
	case ip.Is4():
		return []string{"ifconfig", "lo0", "inet", ip.String(), "-alias"}
	case op == opAdd:
		return []string{"ifconfig", "lo0", "inet6", ip.String(), "prefixlen", "128", "alias"}
	default:
		return []string{"ifconfig", "lo0", "inet6", ip.String(), "-alias"}
	}
}

func darwinPlan(ip netip.Addr) aliasPlan {
	return aliasPlan{
		add:     darwinAliasArgs(opAdd, ip),
		remove:  darwinAliasArgs(opRemove, ip),
		show:    []string{"ifconfig", "lo0"},
		present: darwinPresent,
		// BSD ifconfig's SIOCAIFADDR replaces an existing address, so
		// adding twice normally succeeds; EEXIST is handled anyway.
		exists: []string{"File exists"},
		absent: []string{"Can't assign requested address"},
		hint:   "adding an alias to lo0 needs root: run with sudo",
	}
}

// darwinPresent finds "inet 169.254.169.254 netmask 0xffffffff" or
// "inet6 fd00:ec2::254 prefixlen 128" in `ifconfig lo0` output. The address
// with another mask (`ifconfig lo0 alias 169.254.169.254` defaults to the
// class B mask) counts as absent, and adding it again sets the /32 mask.
func darwinPresent(out []byte, ip netip.Addr) bool {
	words := strings.Fields(string(out))
	key, maskKey, mask := "inet", "netmask", "0xffffffff"
	if ip.Is6() {
		key, maskKey, mask = "inet6", "prefixlen", "128"
	}
	for i := 0; i+3 < len(words); i++ {
		if words[i] == key && words[i+1] == ip.String() && words[i+2] == maskKey && words[i+3] == mask {
			return true
		}
	}
	return false
}

// windowsInterfacesArgs lists the interfaces of ip's family, to find the
// loopback pseudo-interface's index.
func windowsInterfacesArgs(ip netip.Addr) []string {
	return []string{"netsh", "interface", windowsFamily(ip), "show", "interfaces"}
}

func windowsFamily(ip netip.Addr) string {
	if ip.Is4() {
		return "ipv4"
	}
	return "ipv6"
}

// windowsLoopbackMTU is the MTU netsh shows for "Loopback Pseudo-Interface 1"
// and for no real adapter.
const windowsLoopbackMTU = "4294967295"

// windowsLoopbackIndex finds the loopback pseudo-interface in the table of
// `netsh interface ipv4|ipv6 show interfaces`:
//
//	Idx     Met         MTU          State                Name
//	---  ----------  ----------  ------------  ---------------------------
//	  1          75  4294967295  connected     Loopback Pseudo-Interface 1
//
// The interface is addressed by its index, not its name: the name is
// localised on some Windows editions and can be renamed, and the header and
// State column are localised too. The index (1 on every install seen) and
// the MTU are numbers. A row counts when its MTU is 4294967295 or its name
// starts with "Loopback Pseudo-Interface"; the first such row wins.
func windowsLoopbackIndex(out []byte) (string, bool) {
	for l := range strings.Lines(string(out)) {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		if n, err := strconv.Atoi(f[0]); err != nil || n <= 0 {
			continue
		}
		name := strings.Join(f[4:], " ")
		if f[2] == windowsLoopbackMTU || strings.HasPrefix(name, "Loopback Pseudo-Interface") {
			return f[0], true
		}
	}
	return "", false
}

// windowsAliasArgs is the netsh command adding or removing ip on the
// interface with index idx. Keywords (name=, interface=, address=, mask=,
// store=) are netsh's own and never localised; ipv4 calls the interface
// "name", ipv6 "interface". store=persistent (netsh's default, spelled out)
// keeps the address across reboots: Windows has no privileged pre-start step
// for a service, so the alias is added once by `imdsd install` and removed
// by `imdsd uninstall`.
func windowsAliasArgs(op aliasOp, ip netip.Addr, idx string) []string {
	verb := "add"
	if op == opRemove {
		verb = "delete"
	}
	argv := []string{"netsh", "interface", windowsFamily(ip), verb, "address"}
	if ip.Is4() {
		argv = append(argv, "name="+idx, "address="+ip.String())
		if op == opAdd {
			argv = append(argv, "mask=255.255.255.255")
		}
	} else {
		addr := ip.String()
		if op == opAdd {
			addr = hostPrefix(ip).String()
		}
		argv = append(argv, "interface="+idx, "address="+addr)
	}
	return append(argv, "store=persistent")
}

// windowsShowArgs lists the addresses of the interface with index idx.
func windowsShowArgs(ip netip.Addr, idx string) []string {
	key := "name="
	if ip.Is6() {
		key = "interface="
	}
	return []string{"netsh", "interface", windowsFamily(ip), "show", "addresses", key + idx}
}

func windowsPlan(ip netip.Addr, idx string) aliasPlan {
	return aliasPlan{
		add:     windowsAliasArgs(opAdd, ip, idx),
		remove:  windowsAliasArgs(opRemove, ip, idx),
		show:    windowsShowArgs(ip, idx),
		present: windowsPresent,
		// ERROR_OBJECT_ALREADY_EXISTS and ERROR_NOT_FOUND as netsh prints
		// them in English, French, German and Spanish, cut before the
		// first non-ASCII letter: netsh writes in the console's OEM code
		// page, not UTF-8. Any other language falls through to the second
		// check of applyAlias.
		exists: []string{"The object already exists", "L'objet existe d", "Das Objekt ist bereits vorhanden", "El objeto ya existe"},
		absent: []string{"Element not found", "Element nicht gefunden", "ment introuvable", "Elemento no encontrado"},
		hint:   "changing an interface's addresses needs an elevated prompt: run as administrator",
	}
}

// windowsPresent finds ip as a word of `netsh interface … show addresses`
// output ("IP Address: 169.254.169.254" in a localised label for IPv4, a
// table whose last column is the address for IPv6).
func windowsPresent(out []byte, ip netip.Addr) bool {
	for _, w := range strings.Fields(string(out)) {
		if a, err := netip.ParseAddr(w); err == nil && a == ip {
			return true
		}
	}
	return false
}

// windowsAlias looks up the loopback pseudo-interface and applies the plan.
func windowsAlias(ctx context.Context, run Runner, op aliasOp, ip netip.Addr) error {
	argv := windowsInterfacesArgs(ip)
	out, err := run(ctx, argv[0], argv[1:]...)
	if err != nil {
		if o := oneLine(out); o != "" {
			return fmt.Errorf("%s alias %s: find the loopback interface: %s: %w: %s", op, ip, strings.Join(argv, " "), err, o)
		}
		return fmt.Errorf("%s alias %s: find the loopback interface: %s: %w", op, ip, strings.Join(argv, " "), err)
	}
	idx, ok := windowsLoopbackIndex(out)
	if !ok {
		return fmt.Errorf("%s alias %s: find the loopback interface: no row with MTU %s in the output of %s: %s",
			op, ip, windowsLoopbackMTU, strings.Join(argv, " "), oneLine(out))
	}
	return applyAlias(ctx, run, op, ip, windowsPlan(ip, idx))
}
