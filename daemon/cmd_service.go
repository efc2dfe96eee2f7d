package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/imdsd/imdsd/install"
)

// The service-management commands: install, uninstall, start, stop,
// restart (alias is cmd_alias.go). Package install owns the host changes,
// as one list of steps (install.Plan) that --dry-run prints and the real
// run performs; this file parses the flags, checks the configuration the
// service would run with, and prints.

var installHelp = `Install imdsd as a service (systemd on Linux, launchd on macOS, the service
control manager on Windows) that runs "imdsd run" with the run flags given
after "--", serving 169.254.169.254:80 (and [fd00:ec2::254]:80 with --ipv6) unless
--listen says otherwise. The run flags are validated as imdsd check-config
does, with what the service will have: the config file
(` + defaultConfigPath() + `) and ` + install.EnvironmentPath + ` (Linux), not
this shell's IMDSD_* variables; an invalid one is refused. The *-command
flags, which may carry secrets, go into ` + install.EnvironmentPath + ` (mode
0600), not into the unit every user can read (elsewhere: use the config file).

--containers adds the container credentials endpoint, 169.254.170.23:80
(and [fd00:ec2::23]:80 with --ipv6) unless --container-listen says
otherwise, for the roles with container: true.

Installing again with other flags replaces the service's definition
(restart it to apply them); with the same flags it changes nothing.
Needs root, except --dry-run.

Examples:
  sudo imdsd install -- --source assume-role --role-arn arn:aws:iam::123456789012:role/dev
  sudo imdsd install --user alice -- --source profile --profile sso-dev
  imdsd install --dry-run --ipv6 --socket-activation -- --source dev
  sudo imdsd install --containers -- --source assume-role --role-arn arn:aws:iam::123456789012:role/dev --container
  sudo imdsd install -- --source profile --profile dev && sudo imdsd start && aws sts get-caller-identity

The run flags after "--" are those of imdsd run --help.
`

var executablePath = install.Executable

// errNotRoot refuses a change by a user the host does not allow.
func errNotRoot(cmd string) error {
	return withCode(exitPermission, fmt.Errorf("must run as root (sudo imdsd %s)", cmd))
}

var installSpec = commandSpec{
	name:     "install",
	synopsis: "install [--dry-run] [--user NAME] [--ipv6] [--containers] [--socket-activation] [-- RUN FLAGS]",
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
	fs.BoolVar(&c.opts.IPv6, "ipv6", false, "also alias and serve fd00:ec2::254 (and fd00:ec2::23 with --containers)")
	fs.BoolVar(&c.opts.Containers, "containers", false, "also alias and serve 169.254.170.23, the container credentials endpoint")
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
	for _, l := range c.opts.Listeners() {
		if c.opts.SocketActivation && len(l.Addrs) > 0 && c.given(l.Flag) {
			errs = append(errs, fmt.Errorf("--socket-activation: the service serves what imdsd.socket binds (%s); drop --%s",
				strings.Join(l.Addrs, ", "), l.Flag))
		}
	}
	return errors.Join(errs...)
}

// given reports whether the run flags set flag name.
func (c *installCmd) given(name string) bool { return c.rf.given(strings.ReplaceAll(name, "-", "_")) }

// Run checks the configuration the service would run with (the run flags,
// the config file, the service's environment file, no IMDSD_* variable of
// this shell) and installs the service, or prints what it would do.
func (c *installCmd) Run(ctx context.Context, runArgs []string) error {
	if !c.dryRun && !c.host.Privileged() {
		return errNotRoot("install …")
	}
	for _, l := range c.opts.Listeners() {
		if c.given(l.Flag) {
			continue
		}
		for _, a := range l.Addrs {
			runArgs = append(runArgs, "--"+l.Flag, a)
			_ = c.rf.fs.Set(l.Flag, a)
		}
	}
	getenv, deps, err := c.serviceEnv()
	if err != nil {
		return err
	}
	cfg, _, _, loadErr, invalid := loadRunConfig(ctx, &c.rf, getenv, deps)
	if c.opts.Containers && len(cfg.containerRoles()) == 0 { // said for --containers, not Validate's container_listen
		invalid = errors.Join(append([]error{errNoContainerRole}, slices.DeleteFunc(flatten(invalid), func(e error) bool {
			return strings.HasPrefix(e.Error(), "container_listen: no role is served")
		})...)...)
	}
	switch {
	case loadErr != nil:
		return withCode(exitUsage, loadErr)
	case invalid != nil:
		return withCode(exitUsage, fmt.Errorf("invalid configuration:\n%w", invalid))
	case cfg.Source == "dev":
		fmt.Fprintf(c.stderr, "imdsd install: note: the service will serve the dev source's made-up credentials, which AWS refuses; "+
			"give a real source (-- --source assume-role --role-arn …, see imdsd run --help) or set source in %s\n", defaultConfigPath())
	}
	c.fromConfig(cfg)
	args, env := install.SplitSecrets(c.rf.fs, runArgs)
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

var errNoContainerRole = errors.New("--containers: no role is served to containers; set container: true on one in the config file (-- --container for the one role)")

// fromConfig completes c.opts from the configuration the service runs
// with: ExecReload= gets the run flags' --admin-socket and --config, and on
// Linux the service joins the container tokens' group, which it gives the
// token files to (chown needs the membership). It notes a token directory
// the service cannot write.
func (c *installCmd) fromConfig(cfg Config) {
	if c.rf.given("admin_socket") {
		c.opts.ReloadArgs = append(c.opts.ReloadArgs, "--admin-socket", c.rf.values.AdminSocket)
	}
	if c.rf.configPath != "" {
		c.opts.ReloadArgs = append(c.opts.ReloadArgs, "--"+configFlag, c.rf.configPath)
	}
	if len(cfg.containerRoles()) == 0 || c.host.GOOS != "linux" {
		return
	}
	if cfg.ContainerTokenGroup != "" {
		c.opts.Groups = []string{cfg.ContainerTokenGroup}
	}
	if err := install.CheckTokenDir(cfg.ContainerTokenDir); err != nil {
		fmt.Fprintf(c.stderr, "imdsd install: note: container_token_dir %v\n", err)
	}
}

// serviceEnv is what the installed service will see of its environment,
// as getenv and the STS dependencies: the variables of its environment
// file and systemd's, none of this shell's IMDSD_* ones (install says
// which it ignores). The SDK reads base credentials from this process's
// environment, never getenv, so the file's AWS_ACCESS_KEY_ID and others
// reach it as the configuration's keys. Without root, --dry-run checks
// without the file (mode 0600), and says so.
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

// uninstallSpec, like controlSpec("start") and the others, acts on the
// installed service.
