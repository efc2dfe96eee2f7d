package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/imdsd/imdsd/install"
)

// The service-management commands: alias, install, uninstall, start, stop,
// restart. Package install owns the host changes, as one list of steps
// (install.Plan) that --dry-run prints and the real run performs; this file
// parses the flags, checks the configuration the service would run with,
// and prints.

const aliasHelp = `Add the IMDS address to the loopback interface, or remove it (default
169.254.169.254; --ipv6 also fd00:ec2::254), as a single-host address:
/32 and /128 on Linux (lo), netmask 255.255.255.255 on macOS (lo0), the
loopback pseudo-interface on Windows. Adding what is there and removing
what is not both succeed. Needs root, except when there is nothing to do.

The installed service runs "imdsd alias add" as root before each start
(systemd ExecStartPre=+, the launchd plist); imdsd uninstall removes it.

Examples:
  sudo imdsd alias add
  sudo imdsd alias add --ipv6
  sudo imdsd alias remove 169.254.169.254 fd00:ec2::254
`

var installHelp = `Install imdsd as a service (systemd on Linux, launchd on macOS, the service
control manager on Windows) that runs "imdsd run" with the run flags given
after "--", serving 169.254.169.254:80 (and [fd00:ec2::254]:80 with --ipv6) unless
--listen says otherwise. The run flags are validated as imdsd check-config
does, with what the service will have: the config file
(` + defaultConfigPath() + `) and ` + install.EnvironmentPath + ` (Linux), not
this shell's IMDSD_* variables; an invalid one is refused. The *-command
flags, which may carry secrets, go into ` + install.EnvironmentPath + ` (mode
0600), not into the unit every user can read (elsewhere: use the config file).

Installing again with other flags replaces the service's definition
(restart it to apply them); with the same flags it changes nothing.
Needs root, except --dry-run.

Examples:
  sudo imdsd install -- --source assume-role --role-arn arn:aws:iam::123456789012:role/dev
  sudo imdsd install --user alice -- --source profile --profile sso-dev
  imdsd install --dry-run --ipv6 --socket-activation -- --source dev
  sudo imdsd install -- --source profile --profile dev && sudo imdsd start && aws sts get-caller-identity

The run flags after "--" are those of imdsd run --help.
`

var uninstallHelp = `Stop and remove the imdsd service and everything imdsd install added, in
the reverse order: imdsd.socket, the unit or plist, install's lines in
` + install.EnvironmentPath + `, the loopback aliases (169.254.169.254 and
fd00:ec2::254). The config file and your own lines are kept. Uninstalling
what is not installed succeeds. Needs root, except --dry-run.

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
var executablePath = install.Executable

// errNotRoot refuses a change by a user the host does not allow.
func errNotRoot(cmd string) error {
	return withCode(exitPermission, fmt.Errorf("must run as root (sudo imdsd %s)", cmd))
}

var aliasSpec = commandSpec{
	name:     "alias",
	synopsis: "alias add|remove [--ipv6] [ADDRESS…]",
	summary:  "add or remove 169.254.169.254 on the loopback interface",
	help:     aliasHelp,
	newCmd:   func(cio cmdIO) command { return &aliasCmd{cmdIO: cio, host: install.LocalHost()} },
}

type aliasCmd struct {
	cmdIO
	host install.Host
	ipv6 bool
}

func (c *aliasCmd) flags(fs *flag.FlagSet) { fs.BoolVar(&c.ipv6, "ipv6", false, "also fd00:ec2::254") }

func (c *aliasCmd) validate(args []string) error {
	if len(args) == 0 || (args[0] != "add" && args[0] != "remove") {
		return errors.New("want add or remove, e.g. imdsd alias add")
	}
	_, err := install.AliasAddrs(args[1:], c.ipv6)
	return err
}

// Run adds or removes the addresses of args, else the IMDS ones.
func (c *aliasCmd) Run(ctx context.Context, args []string) error {
	addrs, _ := install.AliasAddrs(args[1:], c.ipv6)
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

var installSpec = commandSpec{
	name:     "install",
	synopsis: "install [--dry-run] [--user NAME] [--ipv6] [--socket-activation] [-- RUN FLAGS]",
	summary:  "install the service running 'imdsd run RUN FLAGS' (--dry-run shows it)",
	help:     installHelp,
	newCmd:   func(cio cmdIO) command { return &installCmd{cmdIO: cio, host: install.LocalHost()} },
}

type installCmd struct {
	cmdIO
	host   install.Host
	dryRun bool
	opts   install.ServiceOptions
	rf     runFlags // the run flags, after "--"
}

func (c *installCmd) flags(fs *flag.FlagSet) {
	fs.BoolVar(&c.dryRun, "dry-run", false, "print every file install would write, in full, and every command it would run; change nothing")
	fs.StringVar(&c.opts.UserName, "user", "", "run as `NAME` (default: a dynamic user \"imdsd\" on Linux, root on macOS, LocalService on Windows)")
	fs.BoolVar(&c.opts.IPv6, "ipv6", false, "also alias and serve fd00:ec2::254")
	fs.BoolVar(&c.opts.SocketActivation, "socket-activation", false, "(Linux) systemd binds port 80 (imdsd.socket) and the service runs with no capability at all")
}

// validate parses the run flags (the arguments after "--") and checks them
// with install's own.
func (c *installCmd) validate(args []string) error {
	fs := flag.NewFlagSet("imdsd run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.rf.register(fs)
	var errs []error
	if rest, err := parseArgs(fs, args); err != nil {
		errs = append(errs, fmt.Errorf("run flags: %w", err))
	} else if len(rest) > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q: the run flags after \"--\" are flags only", rest[0]))
	}
	if c.opts.SocketActivation && c.host.GOOS != "linux" {
		errs = append(errs, errors.New("--socket-activation: systemd (Linux) only"))
	}
	if c.opts.SocketActivation && c.rf.given("listen") {
		errs = append(errs, fmt.Errorf("--socket-activation: the service serves what imdsd.socket binds (%s); drop --listen",
			strings.Join(install.ListenAddrs(c.opts), ", ")))
	}
	return errors.Join(errs...)
}

// Run checks the configuration the service would run with (the run flags,
// the config file, the service's environment file, no IMDSD_* variable of
// this shell) and installs the service, or prints what it would do.
func (c *installCmd) Run(ctx context.Context, runArgs []string) error {
	if !c.dryRun && !c.host.Privileged() {
		return errNotRoot("install …")
	}
	if !c.rf.given("listen") {
		for _, a := range install.ListenAddrs(c.opts) {
			runArgs = append(runArgs, "--listen", a)
			_ = c.rf.fs.Set("listen", a)
		}
	}
	getenv, deps, err := c.serviceEnv()
	if err != nil {
		return err
	}
	cfg, _, _, loadErr, invalid := loadRunConfig(ctx, &c.rf, getenv, deps)
	switch {
	case loadErr != nil:
		return withCode(exitUsage, loadErr)
	case invalid != nil:
		return withCode(exitUsage, fmt.Errorf("invalid configuration:\n%w", invalid))
	case cfg.Source == "dev":
		fmt.Fprintf(c.stderr, "imdsd install: note: the service will serve the dev source's made-up credentials, which AWS refuses; "+
			"give a real source (-- --source assume-role --role-arn …, see imdsd run --help) or set source in %s\n", defaultConfigPath())
	}
	args, env := splitSecrets(c.rf.fs, runArgs)
	plan, err := c.host.Plan(install.Spec{Args: args, Env: env, ServiceOptions: c.opts})
	if err != nil {
		return withCode(exitUsage, err)
	}
	if c.dryRun {
		fmt.Fprint(c.stdout, plan.DryRun())
		return nil
	}
	outcome, err := plan.Install(ctx)
	if err == nil {
		fmt.Fprintf(c.stdout, "imdsd install: %s\n", plan.Summary(outcome))
	}
	return err
}

// serviceEnv is what the installed service will see of its environment,
// as getenv and the STS dependencies: the variables of its environment
// file, none of this shell's IMDSD_* ones (install says which it ignores).
// The SDK reads base credentials from this process's environment, never
// getenv, so the file's AWS_ACCESS_KEY_ID and others reach it as the
// configuration's keys. Without root, --dry-run checks without the file
// (mode 0600), and says so.
func (c *installCmd) serviceEnv() (func(string) string, stsDeps, error) {
	var ignored []string
	for _, s := range append([]setting{{key: configFlag}}, settings...) {
		if k := envName(s.key); c.getenv(k) != "" {
			ignored = append(ignored, k)
		}
	}
	if len(ignored) > 0 {
		fmt.Fprintf(c.stderr, "imdsd install: ignoring %s: the service does not inherit this shell's environment; use flags or the config file\n",
			strings.Join(ignored, ", "))
	}
	file, err := c.host.ServiceEnvironment()
	if err != nil && c.dryRun {
		fmt.Fprintf(c.stderr, "imdsd install: note: %v; the configuration is checked without it\n", err)
	} else if err != nil {
		return nil, stsDeps{}, err
	}
	getenv := func(k string) string {
		if v, ok := file[k]; ok {
			return v
		}
		if strings.HasPrefix(k, "IMDSD_") {
			return ""
		}
		return c.getenv(k)
	}
	deps := hostDeps(getenv)
	load := deps.loadConfig
	deps.loadConfig = func(ctx context.Context, cfg Config) (aws.Config, error) {
		if cfg.AccessKeyID == "" && file["AWS_ACCESS_KEY_ID"] != "" {
			cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken = file["AWS_ACCESS_KEY_ID"], file["AWS_SECRET_ACCESS_KEY"], file["AWS_SESSION_TOKEN"]
		}
		return load(ctx, cfg)
	}
	return getenv, deps, nil
}

// splitSecrets takes the flags that may carry secrets, the *-command ones
// (an MFA seed or a token on a command line), out of args, which fs parsed:
// every user can read the unit, so they become the service's environment
// variables.
func splitSecrets(fs *flag.FlagSet, args []string) (kept []string, env []install.EnvVar) {
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		f, n := fs.Lookup(name), 1 // n: the arguments of this flag
		if f == nil {              // a final "--", which imdsd run accepts too
			kept = append(kept, args[i])
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !hasValue && !(ok && b.IsBoolFlag()) {
			n = min(2, len(args)-i)
			value = args[i+n-1]
		}
		if strings.HasSuffix(name, "-command") {
			env = append(env, install.EnvVar{Name: envName(strings.ReplaceAll(name, "-", "_")), Value: value})
		} else {
			kept = append(kept, args[i:i+n]...)
		}
		i += n - 1
	}
	return kept, env
}

// uninstallSpec, like controlSpec("start") and the others, acts on the
// installed service.
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
