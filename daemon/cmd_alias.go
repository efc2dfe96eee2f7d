package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/imdsd/imdsd/install"
)

// The alias command: the endpoints' addresses on the loopback interface,
// added or removed through package install (one file per OS there).

const aliasHelp = `Add the endpoints' addresses to the loopback interface, or remove them
(default 169.254.169.254; --ipv6 also fd00:ec2::254; --containers also the
container credentials endpoint's 169.254.170.23, and fd00:ec2::23 with
--ipv6), as single-host addresses: /32 and /128 on Linux (lo), netmask
255.255.255.255 on macOS (lo0), the loopback pseudo-interface on Windows.
Adding what is there and removing what is not both succeed. Needs root,
except when there is nothing to do.

The installed service runs "imdsd alias add" as root before each start
(systemd ExecStartPre=+, the launchd plist); imdsd uninstall removes all
of them.

Examples:
  sudo imdsd alias add
  sudo imdsd alias add --ipv6 --containers
  sudo imdsd alias remove 169.254.169.254 fd00:ec2::254
`

var aliasSpec = commandSpec{
	name:     "alias",
	synopsis: "alias add|remove [--ipv6] [--containers] [ADDRESS…]",
	summary:  "add or remove 169.254.169.254 (and 169.254.170.23) on the loopback interface",
	help:     aliasHelp,
	newCmd:   func(cio cmdIO) command { return &aliasCmd{cmdIO: cio, host: install.LocalHost()} },
}

type aliasCmd struct {
	cmdIO
	host       install.Host
	ipv6       bool
	containers bool
}

func (c *aliasCmd) flags(fs *flag.FlagSet) {
	fs.BoolVar(&c.ipv6, "ipv6", false, "also fd00:ec2::254 (and fd00:ec2::23 with --containers)")
	fs.BoolVar(&c.containers, "containers", false, "also 169.254.170.23, the container credentials endpoint")
}

func (c *aliasCmd) validate(args []string) error {
	if len(args) == 0 || (args[0] != "add" && args[0] != "remove") {
		return errors.New("want add or remove, e.g. imdsd alias add")
	}
	_, err := install.AliasAddrs(args[1:], c.ipv6, c.containers)
	return err
}

// Run adds or removes the addresses of args, else the endpoints' ones.
func (c *aliasCmd) Run(ctx context.Context, args []string) error {
	addrs, _ := install.AliasAddrs(args[1:], c.ipv6, c.containers)
	apply, state := install.AddAlias, "on"
	if args[0] == "remove" {
		apply, state = install.RemoveAlias, "not on"
	}
	var errs []error
	for _, ip := range addrs {
		if err := apply(ctx, c.host.Run, ip); err != nil {
			errs = append(errs, err)
		} else {
			fmt.Fprintf(c.stdout, "imdsd alias %s: %s is %s the loopback interface\n", args[0], ip, state)
		}
	}
	return errors.Join(errs...)
}
