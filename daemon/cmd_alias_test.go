package daemon

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestAlias runs imdsd alias on a fake Linux host (newTestEnv): the ip
// commands it runs, what it prints, and its exit code.
func TestAlias(t *testing.T) {
	const (
		show4 = "ip -o -4 addr show dev lo"
		show6 = "ip -o -6 addr show dev lo"
	)
	tests := []struct {
		name     string
		args     string
		present  bool   // both addresses are on lo at first
		fail     string // the output of a failing add or del
		code     int
		wantCmds []string
		wantOut  string
		wantErr  string
	}{
		{name: "add", args: "add", code: exitOK,
			wantCmds: []string{show4, "ip addr add 169.254.169.254/32 dev lo"},
			wantOut:  "imdsd alias add: 169.254.169.254 is on the loopback interface\n"},
		{name: "add present", args: "add", present: true, code: exitOK,
			wantCmds: []string{show4}},
		{name: "add ipv6", args: "add --ipv6", code: exitOK,
			wantCmds: []string{show4, "ip addr add 169.254.169.254/32 dev lo", show6, "ip -6 addr add fd00:ec2::254/128 dev lo nodad"}},
		{name: "add both, as the unit does", args: "add 169.254.169.254 fd00:ec2::254", code: exitOK,
			wantCmds: []string{show4, "ip addr add 169.254.169.254/32 dev lo", show6, "ip -6 addr add fd00:ec2::254/128 dev lo nodad"}},
		{name: "remove present", args: "remove --ipv6", present: true, code: exitOK,
			wantCmds: []string{show4, "ip addr del 169.254.169.254/32 dev lo", show6, "ip -6 addr del fd00:ec2::254/128 dev lo"},
			wantOut:  "imdsd alias remove: 169.254.169.254 is not on the loopback interface\nimdsd alias remove: fd00:ec2::254 is not on the loopback interface\n"},
		{name: "remove absent", args: "remove", code: exitOK, wantCmds: []string{show4}},
		{name: "add containers", args: "add --containers", code: exitOK,
			wantCmds: []string{show4, "ip addr add 169.254.169.254/32 dev lo", show4, "ip addr add 169.254.170.23/32 dev lo"},
			wantOut:  "imdsd alias add: 169.254.169.254 is on the loopback interface\nimdsd alias add: 169.254.170.23 is on the loopback interface\n"},
		{name: "remove containers and ipv6, present", args: "remove --containers --ipv6", present: true, code: exitOK,
			wantCmds: []string{show4, "ip addr del 169.254.169.254/32 dev lo", show6, "ip -6 addr del fd00:ec2::254/128 dev lo",
				show4, "ip addr del 169.254.170.23/32 dev lo", show6, "ip -6 addr del fd00:ec2::23/128 dev lo"}},
		{name: "not root", args: "add", fail: "RTNETLINK answers: Operation not permitted", code: exitError,
			wantCmds: []string{show4, "ip addr add 169.254.169.254/32 dev lo", show4},
			wantErr:  "imdsd alias: add alias 169.254.169.254: ip addr add 169.254.169.254/32 dev lo: exit status 2: RTNETLINK answers: Operation not permitted (adding an address to lo needs CAP_NET_ADMIN: run as root)\n"},
		{name: "bad address", args: "add 169.254.169.300", code: exitUsage,
			wantErr: "imdsd alias: address: must be an IP address such as 169.254.169.254 (got \"169.254.169.300\")\n" +
				"Run 'imdsd alias --help' for its flags and examples.\n"},
		{name: "not link-local", args: "add 10.0.0.1", code: exitError, wantCmds: nil,
			wantErr: "imdsd alias: alias 10.0.0.1: must be IPv4 link-local (169.254.0.0/16) or IPv6 unique-local (fc00::/7)\n"},
		{name: "no verb", args: "", code: exitUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			te := newTestEnv(t, 0)
			on := map[string]bool{}
			if tc.present {
				on["169.254.169.254/32"], on["fd00:ec2::254/128"] = true, true
				on["169.254.170.23/32"], on["fd00:ec2::23/128"] = true, true
			}
			te.rec.reply = func(argv string) ([]byte, error) {
				f := strings.Fields(argv)
				switch {
				case strings.Contains(argv, " show "):
					var out string
					for a := range on {
						if on[a] {
							out += "1: lo    inet " + a + " scope global lo\n"
						}
					}
					return []byte(out), nil
				case tc.fail != "":
					return []byte(tc.fail), errors.New("exit status 2")
				}
				for i, w := range f { // ip [-6] addr add|del ADDR dev lo
					if w == "add" || w == "del" {
						on[f[i+1]] = w == "add"
					}
				}
				return nil, nil
			}
			code, out, errOut := te.cmd(t, append([]string{"alias"}, strings.Fields(tc.args)...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, errOut)
			}
			if diff := cmp.Diff(tc.wantCmds, te.rec.calls); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
			if tc.wantOut != "" && out != tc.wantOut {
				t.Errorf("stdout %q, want %q", out, tc.wantOut)
			}
			if tc.wantErr != "" && errOut != tc.wantErr {
				t.Errorf("stderr\n%q\nwant\n%q", errOut, tc.wantErr)
			}
		})
	}
}
