package launchd_test

import (
	"strings"
	"testing"

	"github.com/imdsd/imdsd/launchd"
)

// The plist itself is compared with install/testdata/darwin-imdsd.plist.golden.

func TestPlist(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    launchd.Daemon
		want []string // whole lines
		not  []string
	}{
		{"ipv4", launchd.Daemon{Exe: "/usr/local/bin/imdsd", Args: []string{"run"}},
			[]string{"\t\t<string>\"$0\" alias add 169.254.169.254 &amp;&amp; exec \"$0\" \"$@\"</string>", "\t\t<string>/usr/local/bin/imdsd</string>", "\t\t<string>run</string>"},
			[]string{"\t<key>UserName</key>"}},
		{"ipv6 and a user", launchd.Daemon{Exe: "/usr/local/bin/imdsd", Args: []string{"run", "--ipv6"}, User: "alice", IPv6: true},
			[]string{"\t\t<string>\"$0\" alias add 169.254.169.254 fd00:ec2::254 &amp;&amp; exec \"$0\" \"$@\"</string>", "\t<key>UserName</key>", "\t<string>alice</string>", "\t\t<string>--ipv6</string>"},
			nil},
		{"containers", launchd.Daemon{Exe: "/usr/local/bin/imdsd", Args: []string{"run"}, Containers: true},
			[]string{"\t\t<string>\"$0\" alias add 169.254.169.254 169.254.170.23 &amp;&amp; exec \"$0\" \"$@\"</string>"},
			nil},
		{"containers and ipv6", launchd.Daemon{Exe: "/usr/local/bin/imdsd", Args: []string{"run"}, Containers: true, IPv6: true},
			[]string{"\t\t<string>\"$0\" alias add 169.254.169.254 fd00:ec2::254 169.254.170.23 fd00:ec2::23 &amp;&amp; exec \"$0\" \"$@\"</string>"},
			nil},
		{"escaped, never expanded", launchd.Daemon{Exe: "/a&b/imdsd", Args: []string{"run", `<x "y">`, "{{Path}}"}, User: "{{UserName}}"},
			[]string{"\t\t<string>/a&amp;b/imdsd</string>", "\t\t<string>&lt;x &#34;y&#34;&gt;</string>", "\t\t<string>{{Path}}</string>", "\t<string>{{UserName}}</string>"},
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := strings.Split(launchd.Plist(tc.d), "\n")
			has := func(l string) bool {
				for _, x := range lines {
					if x == l {
						return true
					}
				}
				return false
			}
			for _, l := range tc.want {
				if !has(l) {
					t.Errorf("Plist lacks line %q:\n%s", l, strings.Join(lines, "\n"))
				}
			}
			for _, l := range tc.not {
				if has(l) {
					t.Errorf("Plist has line %q", l)
				}
			}
		})
	}
	if s := launchd.Plist(launchd.Daemon{Exe: "/x", Args: []string{"run"}}); strings.Contains(s, "{{") {
		t.Errorf("Plist left a placeholder:\n%s", s)
	}
}
