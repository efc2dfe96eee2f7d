package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/imdsd/imdsd/install"
)

// imdsd start, stop, restart and uninstall: the installed service through
// the service manager (install.Plan.Control and Uninstall).

var uninstallHelp = `Stop and remove the imdsd service and everything imdsd install added, in
the reverse order: imdsd.socket, the unit or plist, install's lines in
` + install.EnvironmentPath + `, the loopback aliases (169.254.169.254,
fd00:ec2::254, 169.254.170.23, fd00:ec2::23). The config file, your own
lines and the container tokens are kept. Uninstalling what is not
installed succeeds. Needs root, except --dry-run.

Examples:
  sudo imdsd uninstall
  imdsd uninstall --dry-run
`

const controlHelp = `%[2]s the installed imdsd service through the service manager (systemctl,
launchctl, the Windows service control manager). On Linux, starting waits
until imdsd holds its first credentials (up to 2 minutes); stopping drains
the requests in flight.

Examples:
  sudo imdsd %[1]s
  sudo imdsd status
`

// executablePath is this executable as the service must run it (also used
// by program.go).
var uninstallSpec = controlSpec("uninstall")

func controlSpec(action string) commandSpec {
	verb := map[string]string{"start": "Start", "stop": "Stop", "restart": "Restart"}[action]
	spec := commandSpec{
		name:     action,
		synopsis: action,
		summary:  strings.ToLower(verb) + " the installed service",
		help:     fmt.Sprintf(controlHelp, action, verb),
		newCmd:   func(cio cmdIO) command { return &controlCmd{cmdIO: cio, host: install.LocalHost(), action: action} },
	}
	if action == "uninstall" {
		spec.synopsis, spec.summary, spec.help = "uninstall [--dry-run]", "remove the service, its socket and the loopback aliases", uninstallHelp
	}
	return spec
}

type controlCmd struct {
	cmdIO
	host   install.Host
	action string
	dryRun bool // uninstall
}

func (c *controlCmd) flags(fs *flag.FlagSet) {
	if c.action == "uninstall" {
		fs.BoolVar(&c.dryRun, "dry-run", false, "print what uninstall would do and change nothing")
	}
}

func (c *controlCmd) validate(args []string) error { return takesFlagsOnly("imdsd "+c.action, args) }

// Run starts, stops or restarts the installed service, or uninstalls it.
func (c *controlCmd) Run(ctx context.Context, _ []string) error {
	if c.action == "uninstall" {
		return c.uninstall(ctx)
	}
	plan, err := c.host.Plan(install.Spec{})
	if err == nil {
		err = plan.Control(c.action)
	}
	if errors.Is(err, install.ErrNotInstalled) {
		return fmt.Errorf("%w: sudo imdsd install first", err)
	} else if err != nil {
		return fmt.Errorf("%w\nsee: %s, and imdsd status", err, c.host.LogHint())
	}
	past := map[string]string{"start": "started", "stop": "stopped", "restart": "restarted"}[c.action]
	fmt.Fprintf(c.stdout, "imdsd %s: %s the imdsd service (%s)", c.action, past, c.host.Platform)
	if c.action != "stop" {
		fmt.Fprint(c.stdout, "; imdsd status shows what it serves")
	}
	fmt.Fprintln(c.stdout)
	return nil
}

// uninstall removes the service and everything install added (install's
// steps, backwards), or prints what it would do.
func (c *controlCmd) uninstall(ctx context.Context) error {
	if !c.dryRun && !c.host.Privileged() {
		return errNotRoot("uninstall")
	}
	plan, err := c.host.Plan(install.Spec{})
	if err != nil {
		return err
	}
	if c.dryRun {
		text, err := plan.DryRunRemoval()
		fmt.Fprint(c.stdout, text)
		return err
	}
	installed, err := plan.Uninstall(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "imdsd uninstall: %s\n", map[bool]string{
		true: "removed the imdsd service and the loopback aliases", false: "imdsd was not installed; nothing else to remove"}[installed])
	for _, p := range []string{defaultConfigPath(), install.EnvironmentPath} {
		if c.host.Exists(p) {
			fmt.Fprintf(c.stdout, "imdsd uninstall: kept %s (yours; delete it by hand if you want)\n", p)
		}
	}
	return nil
}
