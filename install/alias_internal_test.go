package install

import (
	"context"
	"errors"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imdsd/imdsd/internal/endpoint"
)

// reply is one scripted answer of fakeRunner.
type reply struct {
	out string
	err error
}

// fakeRunner records every argv and answers from a script, in order.
type fakeRunner struct {
	t      *testing.T
	calls  [][]string
	script []reply
}

func (f *fakeRunner) run(_ context.Context, name string, args ...string) ([]byte, error) {
	f.calls = append(f.calls, append([]string{name}, args...))
	if len(f.script) == 0 {
		f.t.Fatalf("unexpected command %q", strings.Join(append([]string{name}, args...), " "))
	}
	r := f.script[0]
	f.script = f.script[1:]
	return []byte(r.out), r.err
}

var errExit = errors.New("exit status 1")

func TestAliasArgs(t *testing.T) {
	v4, v6, c4, c6 := endpoint.IMDSv4, endpoint.IMDSv6, endpoint.ContainerV4, endpoint.ContainerV6
	tests := []struct {
		name string
		got  []string
		want string
	}{
		{"linux add v4", linuxAliasArgs(opAdd, v4), "ip addr add 169.254.169.254/32 dev lo"},
		{"linux remove v4", linuxAliasArgs(opRemove, v4), "ip addr del 169.254.169.254/32 dev lo"},
		{"linux add v6", linuxAliasArgs(opAdd, v6), "ip -6 addr add fd00:ec2::254/128 dev lo nodad"},
		{"linux remove v6", linuxAliasArgs(opRemove, v6), "ip -6 addr del fd00:ec2::254/128 dev lo"},
		{"linux show v4", linuxPlan(v4).show, "ip -o -4 addr show dev lo"},
		{"linux show v6", linuxPlan(v6).show, "ip -o -6 addr show dev lo"},
		{"darwin add v4", darwinAliasArgs(opAdd, v4), "ifconfig lo0 inet 169.254.169.254 netmask 255.255.255.255 alias"},
		{"darwin remove v4", darwinAliasArgs(opRemove, v4), "ifconfig lo0 inet 169.254.169.254 -alias"},
		{"darwin add v6", darwinAliasArgs(opAdd, v6), "ifconfig lo0 inet6 fd00:ec2::254 prefixlen 128 alias"},
		{"darwin remove v6", darwinAliasArgs(opRemove, v6), "ifconfig lo0 inet6 fd00:ec2::254 -alias"},
		{"darwin show", darwinPlan(v4).show, "ifconfig lo0"},
		{"windows interfaces v4", windowsInterfacesArgs(v4), "netsh interface ipv4 show interfaces"},
		{"windows interfaces v6", windowsInterfacesArgs(v6), "netsh interface ipv6 show interfaces"},
		{"windows add v4", windowsAliasArgs(opAdd, v4, "1"), "netsh interface ipv4 add address name=1 address=169.254.169.254 mask=255.255.255.255 store=persistent"},
		{"windows remove v4", windowsAliasArgs(opRemove, v4, "1"), "netsh interface ipv4 delete address name=1 address=169.254.169.254 store=persistent"},
		{"windows add v6", windowsAliasArgs(opAdd, v6, "1"), "netsh interface ipv6 add address interface=1 address=fd00:ec2::254/128 store=persistent"},
		{"windows remove v6", windowsAliasArgs(opRemove, v6, "1"), "netsh interface ipv6 delete address interface=1 address=fd00:ec2::254 store=persistent"},
		{"windows show v4", windowsShowArgs(v4, "1"), "netsh interface ipv4 show addresses name=1"},
		{"windows show v6", windowsShowArgs(v6, "1"), "netsh interface ipv6 show addresses interface=1"},
		// The container endpoint's addresses, exactly like the IMDS ones.
		{"linux add container v4", linuxAliasArgs(opAdd, c4), "ip addr add 169.254.170.23/32 dev lo"},
		{"linux remove container v4", linuxAliasArgs(opRemove, c4), "ip addr del 169.254.170.23/32 dev lo"},
		{"linux add container v6", linuxAliasArgs(opAdd, c6), "ip -6 addr add fd00:ec2::23/128 dev lo nodad"},
		{"linux remove container v6", linuxAliasArgs(opRemove, c6), "ip -6 addr del fd00:ec2::23/128 dev lo"},
		{"darwin add container v4", darwinAliasArgs(opAdd, c4), "ifconfig lo0 inet 169.254.170.23 netmask 255.255.255.255 alias"},
		{"darwin add container v6", darwinAliasArgs(opAdd, c6), "ifconfig lo0 inet6 fd00:ec2::23 prefixlen 128 alias"},
		{"darwin remove container v4", darwinAliasArgs(opRemove, c4), "ifconfig lo0 inet 169.254.170.23 -alias"},
		{"windows add container v4", windowsAliasArgs(opAdd, c4, "1"), "netsh interface ipv4 add address name=1 address=169.254.170.23 mask=255.255.255.255 store=persistent"},
		{"windows remove container v4", windowsAliasArgs(opRemove, c4, "1"), "netsh interface ipv4 delete address name=1 address=169.254.170.23 store=persistent"},
		{"windows add container v6", windowsAliasArgs(opAdd, c6, "1"), "netsh interface ipv6 add address interface=1 address=fd00:ec2::23/128 store=persistent"},
	}
	for _, tc := range tests {
		if got := strings.Join(tc.got, " "); got != tc.want {
			t.Errorf("%s: argv = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// Real outputs of each OS's listing command, with and without the aliases.
const (
	linuxShowV4With = `1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
1: lo    inet 169.254.169.254/32 scope global lo\       valid_lft forever preferred_lft forever
`
	// aws-vault's /24 alias is another address to the kernel.
	linuxShowV4Without = `1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
1: lo    inet 169.254.169.254/24 scope global lo:0\       valid_lft forever preferred_lft forever
`
	linuxShowV6With = `1: lo    inet6 ::1/128 scope host noprefixroute \       valid_lft forever preferred_lft forever
1: lo    inet6 fd00:ec2::254/128 scope global nodad \       valid_lft forever preferred_lft forever
`
	linuxShowV6Without = `1: lo    inet6 ::1/128 scope host noprefixroute \       valid_lft forever preferred_lft forever
`
	darwinShowWith = `lo0: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> mtu 16384
	options=1203<RXCSUM,TXCSUM,TXSTATUS,SW_TIMESTAMP>
	inet 127.0.0.1 netmask 0xff000000
	inet6 ::1 prefixlen 128
	inet6 fe80::1%lo0 prefixlen 64 scopeid 0x1
	inet 169.254.169.254 netmask 0xffffffff
	inet6 fd00:ec2::254 prefixlen 128
	nd6 options=201<PERFORMNUD,DAD>
`
	// `ifconfig lo0 alias 169.254.169.254` gives the class B mask.
	darwinShowWithout = `lo0: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> mtu 16384
	options=1203<RXCSUM,TXCSUM,TXSTATUS,SW_TIMESTAMP>
	inet 127.0.0.1 netmask 0xff000000
	inet6 ::1 prefixlen 128
	inet6 fe80::1%lo0 prefixlen 64 scopeid 0x1
	inet 169.254.169.254 netmask 0xffff0000
	nd6 options=201<PERFORMNUD,DAD>
`
	windowsShowV4With = `
Configuration for interface "Loopback Pseudo-Interface 1"
    DHCP enabled:                         No
    IP Address:                           127.0.0.1
    Subnet Prefix:                        127.0.0.0/8 (mask 255.0.0.0)
    IP Address:                           169.254.169.254
    Subnet Prefix:                        169.254.169.254/32 (mask 255.255.255.255)
    InterfaceMetric:                      75
`
	windowsShowV4Without = `
Konfiguration der Schnittstelle "Loopback Pseudo-Interface 1"
    DHCP aktiviert:                       Nein
    IP-Adresse:                           127.0.0.1
    Subnetzpr„fix:                        127.0.0.0/8 (Maske 255.0.0.0)
    Schnittstellenmetrik:                 75
`
	windowsShowV6With = `
Addr Type  DAD State   Valid Life Pref. Life Address
---------  ----------- ---------- ---------- ------------------------
Other      Preferred     infinite   infinite ::1
Manual     Preferred     infinite   infinite fd00:ec2::254
`
	windowsShowV6Without = `
Addr Type  DAD State   Valid Life Pref. Life Address
---------  ----------- ---------- ---------- ------------------------
Other      Preferred     infinite   infinite ::1
`
	windowsInterfaces = `
Idx     Met         MTU          State                Name
---  ----------  ----------  ------------  ---------------------------
  1          75  4294967295  connected     Loopback Pseudo-Interface 1
 12          25        1500  connected     Ethernet
`
)

// osCase is one OS's plan for one address with the answers its commands give.
type osCase struct {
	name          string
	plan          aliasPlan
	ip            netip.Addr
	with, without string   // listing output
	exists        []string // answers to adding a present address
	absent        []string // answers to removing an absent address
	denied        string   // a real failure
	hint          string
}

func osCases() []osCase {
	return []osCase{
		{
			name: "linux v4", plan: linuxPlan(endpoint.IMDSv4), ip: endpoint.IMDSv4,
			with: linuxShowV4With, without: linuxShowV4Without,
			exists: []string{"RTNETLINK answers: File exists", "Error: ipv4: Address already assigned."},
			absent: []string{"RTNETLINK answers: Cannot assign requested address", "Error: ipv4: Address not found."},
			denied: "RTNETLINK answers: Operation not permitted", hint: "run as root",
		},
		{
			name: "linux v6", plan: linuxPlan(endpoint.IMDSv6), ip: endpoint.IMDSv6,
			with: linuxShowV6With, without: linuxShowV6Without,
			exists: []string{"RTNETLINK answers: File exists", "Error: ipv6: address already assigned."},
			absent: []string{"RTNETLINK answers: Cannot assign requested address", "Error: ipv6: address not found."},
			denied: "RTNETLINK answers: Operation not permitted", hint: "run as root",
		},
		{
			name: "darwin v4", plan: darwinPlan(endpoint.IMDSv4), ip: endpoint.IMDSv4,
			with: darwinShowWith, without: darwinShowWithout,
			exists: []string{"ifconfig: ioctl (SIOCAIFADDR): File exists"},
			absent: []string{"ifconfig: ioctl (SIOCDIFADDR): Can't assign requested address"},
			denied: "ifconfig: ioctl (SIOCAIFADDR): permission denied", hint: "run with sudo",
		},
		{
			name: "darwin v6", plan: darwinPlan(endpoint.IMDSv6), ip: endpoint.IMDSv6,
			with: darwinShowWith, without: darwinShowWithout,
			exists: []string{"ifconfig: ioctl (SIOCAIFADDR_IN6): File exists"},
			absent: []string{"ifconfig: ioctl (SIOCDIFADDR_IN6): Can't assign requested address"},
			denied: "ifconfig: ioctl (SIOCAIFADDR_IN6): permission denied", hint: "run with sudo",
		},
		{
			name: "windows v4", plan: windowsPlan(endpoint.IMDSv4, "1"), ip: endpoint.IMDSv4,
			with: windowsShowV4With, without: windowsShowV4Without,
			// French and Spanish in code page 850, as netsh writes them.
			exists: []string{"The object already exists.\r\n\r\n", "L'objet existe d\x83j\x85.\r\n", "Das Objekt ist bereits vorhanden.\r\n", "El objeto ya existe.\r\n"},
			absent: []string{"Element not found.\r\n", "\x90l\x82ment introuvable.\r\n", "Element nicht gefunden.\r\n", "Elemento no encontrado.\r\n"},
			denied: "The requested operation requires elevation (Run as administrator).\r\n", hint: "run as administrator",
		},
		{
			name: "windows v6", plan: windowsPlan(endpoint.IMDSv6, "1"), ip: endpoint.IMDSv6,
			with: windowsShowV6With, without: windowsShowV6Without,
			exists: []string{"The object already exists.\r\n", "Das Objekt ist bereits vorhanden.\r\n"},
			absent: []string{"Element not found.\r\n", "Elemento no encontrado.\r\n"},
			denied: "The requested operation requires elevation (Run as administrator).\r\n", hint: "run as administrator",
		},
	}
}

func TestApplyAlias(t *testing.T) {
	// A language none of the known answers covers.
	const unknownAnswer = "Объект уже существует.\r\n"
	for _, oc := range osCases() {
		for _, op := range []aliasOp{opAdd, opRemove} {
			show := strings.Join(oc.plan.show, " ")
			cmd, known := oc.plan.add, oc.exists
			done, todo := oc.with, oc.without // listing when the work is done / to do
			if op == opRemove {
				cmd, known = oc.plan.remove, oc.absent
				done, todo = oc.without, oc.with
			}
			cmdLine := strings.Join(cmd, " ")
			type step struct {
				argv string
				reply
			}
			tests := []struct {
				name    string
				steps   []step
				wantErr []string // fragments of the error; nil for success
			}{
				{name: "nothing to do", steps: []step{{show, reply{out: done}}}},
				{name: "done", steps: []step{{show, reply{out: todo}}, {cmdLine, reply{}}}},
				{name: "listing fails, command succeeds", steps: []step{{show, reply{out: "boom", err: errExit}}, {cmdLine, reply{}}}},
				{name: "unknown answer, state already right", steps: []step{
					{show, reply{out: todo}}, {cmdLine, reply{out: unknownAnswer, err: errExit}}, {show, reply{out: done}},
				}},
				{name: "real failure", steps: []step{
					{show, reply{out: todo}}, {cmdLine, reply{out: oc.denied, err: errExit}}, {show, reply{out: todo}},
				}, wantErr: []string{op.String() + " alias " + oc.ip.String() + ": " + cmdLine + ": exit status 1: " + strings.TrimSpace(oc.denied), oc.hint}},
				{name: "command not found", steps: []step{
					{show, reply{err: exec.ErrNotFound}}, {cmdLine, reply{err: exec.ErrNotFound}}, {show, reply{err: exec.ErrNotFound}},
				}, wantErr: []string{cmdLine + ": executable file not found in $PATH"}},
			}
			for i, answer := range known {
				tests = append(tests, struct {
					name    string
					steps   []step
					wantErr []string
				}{name: "known answer " + string(rune('a'+i)), steps: []step{{show, reply{out: todo}}, {cmdLine, reply{out: answer, err: errExit}}}})
			}
			for _, tc := range tests {
				t.Run(oc.name+"/"+op.String()+"/"+tc.name, func(t *testing.T) {
					f := &fakeRunner{t: t}
					var want []string
					for _, s := range tc.steps {
						f.script = append(f.script, s.reply)
						want = append(want, s.argv)
					}
					err := applyAlias(context.Background(), f.run, op, oc.ip, oc.plan)
					var got []string
					for _, c := range f.calls {
						got = append(got, strings.Join(c, " "))
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("commands run (-want +got):\n%s", diff)
					}
					switch {
					case tc.wantErr == nil && err != nil:
						t.Errorf("applyAlias() = %v, want nil", err)
					case tc.wantErr != nil && err == nil:
						t.Errorf("applyAlias() = nil, want an error containing %q", tc.wantErr)
					case err != nil:
						for _, w := range tc.wantErr {
							if !strings.Contains(err.Error(), w) {
								t.Errorf("applyAlias() = %q, want it to contain %q", err, w)
							}
						}
						if !errors.Is(err, errExit) && !errors.Is(err, exec.ErrNotFound) {
							t.Errorf("applyAlias() = %v does not wrap the command's error", err)
						}
						if errors.Is(err, exec.ErrNotFound) && strings.Contains(err.Error(), oc.hint) {
							t.Errorf("applyAlias() = %q suggests %q for a missing command", err, oc.hint)
						}
					}
				})
			}
		}
	}
}

func TestPresent(t *testing.T) {
	for _, oc := range osCases() {
		if !oc.plan.present([]byte(oc.with), oc.ip) {
			t.Errorf("%s: present(with) = false, want true", oc.name)
		}
		if oc.plan.present([]byte(oc.without), oc.ip) {
			t.Errorf("%s: present(without) = true, want false", oc.name)
		}
		if oc.plan.present(nil, oc.ip) {
			t.Errorf("%s: present(empty) = true, want false", oc.name)
		}
	}
}

func TestWindowsLoopbackIndex(t *testing.T) {
	tests := []struct {
		name, out, want string
		ok              bool
	}{
		{"english", windowsInterfaces, "1", true},
		{"german, renamed, index not 1", `
Idx     Met         MTU          Status               Name
---  ----------  ----------  ------------  ---------------------------
  7          25        1500  verbunden     Ethernet
  3          75  4294967295  verbunden     Lokale Schleife
`, "3", true},
		{"by name when the MTU differs", `
  1          75       65535  connected     Loopback Pseudo-Interface 1
`, "1", true},
		{"no loopback", `
Idx     Met         MTU          State                Name
---  ----------  ----------  ------------  ---------------------------
 12          25        1500  connected     Ethernet
`, "", false},
		{"error text", "The following command was not found: interface ipv4 show interfaces.", "", false},
	}
	for _, tc := range tests {
		got, ok := windowsLoopbackIndex([]byte(tc.out))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: windowsLoopbackIndex() = %q, %v, want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestWindowsAlias(t *testing.T) {
	t.Run("finds the index, then adds", func(t *testing.T) {
		f := &fakeRunner{t: t, script: []reply{{out: windowsInterfaces}, {out: windowsShowV4Without}, {}}}
		if err := windowsAlias(context.Background(), f.run, opAdd, endpoint.IMDSv4); err != nil {
			t.Fatalf("windowsAlias() = %v, want nil", err)
		}
		want := [][]string{
			{"netsh", "interface", "ipv4", "show", "interfaces"},
			{"netsh", "interface", "ipv4", "show", "addresses", "name=1"},
			{"netsh", "interface", "ipv4", "add", "address", "name=1", "address=169.254.169.254", "mask=255.255.255.255", "store=persistent"},
		}
		if diff := cmp.Diff(want, f.calls); diff != "" {
			t.Errorf("commands run (-want +got):\n%s", diff)
		}
	})
	t.Run("no loopback interface", func(t *testing.T) {
		f := &fakeRunner{t: t, script: []reply{{out: "Idx Met MTU State Name\n"}}}
		err := windowsAlias(context.Background(), f.run, opRemove, endpoint.IMDSv6)
		if err == nil || !strings.Contains(err.Error(), "remove alias fd00:ec2::254: find the loopback interface") {
			t.Errorf("windowsAlias() = %v, want a loopback lookup error", err)
		}
	})
	t.Run("netsh fails", func(t *testing.T) {
		f := &fakeRunner{t: t, script: []reply{{err: exec.ErrNotFound}}}
		err := windowsAlias(context.Background(), f.run, opAdd, endpoint.IMDSv4)
		if !errors.Is(err, exec.ErrNotFound) {
			t.Errorf("windowsAlias() = %v, want it to wrap exec.ErrNotFound", err)
		}
	})
}

func TestCheckAlias(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{"169.254.169.254", "169.254.169.254", ""},
		{"169.254.170.2", "169.254.170.2", ""}, // the ECS credentials endpoint
		{"169.254.170.23", "169.254.170.23", ""},
		{"fd00:ec2::23", "fd00:ec2::23", ""},
		{"fd00:ec2::254", "fd00:ec2::254", ""},
		{"::ffff:169.254.169.254", "169.254.169.254", ""},
		{"8.8.8.8", "", "alias 8.8.8.8: must be IPv4 link-local (169.254.0.0/16) or IPv6 unique-local (fc00::/7)"},
		{"127.0.0.2", "", "alias 127.0.0.2: must be"},
		{"2001:db8::1", "", "alias 2001:db8::1: must be"},
		{"fe80::1%lo", "", "alias fe80::1%lo: must not have a zone"},
		{"", "", "alias: no address"},
	}
	for _, tc := range tests {
		var ip netip.Addr
		if tc.in != "" {
			ip = netip.MustParseAddr(tc.in)
		}
		got, err := checkAlias(ip)
		switch {
		case tc.wantErr == "" && (err != nil || got.String() != tc.want):
			t.Errorf("checkAlias(%q) = %v, %v, want %s, nil", tc.in, got, err, tc.want)
		case tc.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.wantErr)):
			t.Errorf("checkAlias(%q) error = %v, want prefix %q", tc.in, err, tc.wantErr)
		}
	}
}

// Every plan adds and removes only single-host prefixes.
func TestOnlyHostPrefixes(t *testing.T) {
	for _, oc := range osCases() {
		for _, argv := range [][]string{oc.plan.add, oc.plan.remove} {
			for _, a := range argv {
				if i := strings.LastIndex(a, "/"); i >= 0 && !slices.Contains([]string{"/32", "/128"}, a[i:]) {
					t.Errorf("%s: argument %q has a prefix other than /32 or /128", oc.name, a)
				}
				if strings.Contains(a, "255.") && !strings.HasSuffix(a, "255.255.255.255") {
					t.Errorf("%s: mask %q is not 255.255.255.255", oc.name, a)
				}
			}
		}
	}
}
