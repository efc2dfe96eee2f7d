package daemon

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/kardianos/service"

	"github.com/imdsd/imdsd/install"
)

// The service-management commands: alias, install, uninstall, start, stop,
// restart. kardianos/service does the service manager's part (the unit or
// plist, the SCM); this file adds the rest (the socket unit, the loopback
// alias on Windows) and the checks around it.

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
does, and an invalid configuration is refused. The config file
(` + defaultConfigPath() + `) is read by the service when it exists;
IMDSD_* variables of this shell are not passed to the service.

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

const uninstallHelp = `Stop and remove the imdsd service and everything imdsd install added: the
unit or plist, imdsd.socket, the loopback aliases (169.254.169.254 and
fd00:ec2::254). The config file is kept. Uninstalling what is not installed
succeeds. Needs root, except --dry-run.

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

// svcEnv is what the service commands use of the host; tests replace it.
type svcEnv struct {
	goos       string
	euid       func() int
	executable func() (string, error)
	run        install.Runner
	newService func(service.Interface, *service.Config) (service.Service, error)
	platform   func() string // the service manager kardianos chose, e.g. "linux-systemd"
	// root prefixes the paths imdsd reads, writes and removes itself
	// (tests); kardianos's own paths are never prefixed.
	root string
}

func hostSvcEnv() svcEnv {
	return svcEnv{
		goos:       runtime.GOOS,
		euid:       os.Geteuid,
		executable: executablePath,
		run:        install.ExecRunner,
		newService: service.New,
		platform:   service.Platform,
	}
}

var aliasSpec = commandSpec{
	name:     "alias",
	synopsis: "alias add|remove [--ipv6] [ADDRESS…]",
	summary:  "add or remove 169.254.169.254 on the loopback interface",
	help:     aliasHelp,
	newCmd:   func(cio cmdIO) command { return &aliasCmd{cmdIO: cio, env: hostSvcEnv()} },
}

type aliasCmd struct {
	cmdIO
	env  svcEnv
	ipv6 bool
}

func (c *aliasCmd) flags(fs *flag.FlagSet) { fs.BoolVar(&c.ipv6, "ipv6", false, "also fd00:ec2::254") }

func (c *aliasCmd) validate(args []string) error {
	if len(args) == 0 || (args[0] != "add" && args[0] != "remove") {
		return errors.New("want add or remove, e.g. imdsd alias add")
	}
	_, err := aliasAddrs(args[1:], c.ipv6)
	return err
}

func (c *aliasCmd) Run(ctx context.Context, args []string) error {
	return c.env.alias(ctx, args[0], args[1:], c.ipv6, c.stdout)
}

var installSpec = commandSpec{
	name:     "install",
	synopsis: "install [--dry-run] [--user NAME] [--ipv6] [--socket-activation] [-- RUN FLAGS]",
	summary:  "install the service running 'imdsd run RUN FLAGS' (--dry-run shows it)",
	help:     installHelp,
	newCmd:   func(cio cmdIO) command { return &installCmd{cmdIO: cio, env: hostSvcEnv()} },
}

type installCmd struct {
	cmdIO
	env svcEnv
	installOptions
}

func (c *installCmd) flags(fs *flag.FlagSet) {
	fs.BoolVar(&c.dryRun, "dry-run", false, "print every file install would write, in full, and every command it would run; change nothing")
	fs.StringVar(&c.UserName, "user", "", "run as `NAME` (default: a dynamic user \"imdsd\" on Linux, root on macOS, LocalService on Windows)")
	fs.BoolVar(&c.IPv6, "ipv6", false, "also alias and serve fd00:ec2::254")
	fs.BoolVar(&c.SocketActivation, "socket-activation", false, "(Linux) systemd binds port 80 (imdsd.socket) and the service runs with no capability at all")
}

func (c *installCmd) Run(ctx context.Context, args []string) error {
	return c.env.install(ctx, c.installOptions, args, c.cmdIO)
}

var uninstallSpec = commandSpec{
	name:     "uninstall",
	synopsis: "uninstall [--dry-run]",
	summary:  "remove the service, its socket and the loopback aliases",
	help:     uninstallHelp,
	newCmd:   func(cio cmdIO) command { return &uninstallCmd{cmdIO: cio, env: hostSvcEnv()} },
}

type uninstallCmd struct {
	cmdIO
	env    svcEnv
	dryRun bool
}

func (c *uninstallCmd) flags(fs *flag.FlagSet) {
	fs.BoolVar(&c.dryRun, "dry-run", false, "print what uninstall would do and change nothing")
}

func (c *uninstallCmd) validate(args []string) error { return takesFlagsOnly("imdsd uninstall", args) }

func (c *uninstallCmd) Run(ctx context.Context, _ []string) error {
	return c.env.uninstall(ctx, c.dryRun, c.stdout)
}

func controlSpec(action string) commandSpec {
	verb := map[string]string{"start": "Start", "stop": "Stop", "restart": "Restart"}[action]
	return commandSpec{
		name:     action,
		synopsis: action,
		summary:  strings.ToLower(verb) + " the installed service",
		help:     fmt.Sprintf(controlHelp, action, verb),
		newCmd:   func(cio cmdIO) command { return &controlCmd{cmdIO: cio, env: hostSvcEnv(), action: action} },
	}
}

type controlCmd struct {
	cmdIO
	env    svcEnv
	action string
}

func (*controlCmd) flags(*flag.FlagSet) {}

func (c *controlCmd) validate(args []string) error { return takesFlagsOnly("imdsd "+c.action, args) }

func (c *controlCmd) Run(context.Context, []string) error {
	return c.env.control(c.action, c.stdout)
}

// executablePath is this executable as the service must run it: absolute,
// with symlinks resolved (a package manager's /usr/bin link may move).
func executablePath() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this executable: %w", err)
	}
	if p, err = filepath.EvalSymlinks(p); err != nil {
		return "", fmt.Errorf("resolve this executable: %w", err)
	}
	return filepath.Abs(p)
}

// aliasAddrs are the addresses alias and uninstall work on: the arguments,
// else 169.254.169.254, plus fd00:ec2::254 with ipv6.
func aliasAddrs(args []string, ipv6 bool) ([]netip.Addr, error) {
	var addrs []netip.Addr
	var errs []error
	for _, a := range args {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("address: must be an IP address such as 169.254.169.254 (got %q)", a))
			continue
		}
		addrs = append(addrs, ip)
	}
	if len(args) == 0 {
		addrs = append(addrs, install.IMDSv4)
	}
	if ipv6 && !slices.Contains(addrs, install.IMDSv6) {
		addrs = append(addrs, install.IMDSv6)
	}
	return addrs, errors.Join(errs...)
}

// alias adds (op "add") or removes the addresses of args, else the IMDS
// ones, on the loopback interface.
func (e svcEnv) alias(ctx context.Context, op string, args []string, ipv6 bool, stdout io.Writer) error {
	addrs, err := aliasAddrs(args, ipv6)
	if err != nil {
		return withCode(exitUsage, err)
	}
	apply, state := install.AddAlias, "on"
	if op == "remove" {
		apply, state = install.RemoveAlias, "not on"
	}
	var errs []error
	for _, ip := range addrs {
		if err := apply(ctx, e.run, ip); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(stdout, "imdsd alias %s: %s is %s the loopback interface\n", op, ip, state)
	}
	return errors.Join(errs...)
}

// installOptions are install's own flags; the others are run flags.
type installOptions struct {
	dryRun bool
	install.ServiceOptions
}

// serviceGetenv is the environment the installed service will see of
// what imdsd reads: none of this shell's IMDSD_* variables.
func serviceGetenv(getenv func(string) string) func(string) string {
	return func(k string) string {
		if strings.HasPrefix(k, "IMDSD_") {
			return ""
		}
		return getenv(k)
	}
}

// ignoredEnv names the IMDSD_* variables set in this shell.
func ignoredEnv(getenv func(string) string) []string {
	var names []string
	for _, k := range append([]string{"IMDSD_CONFIG"}, settingEnvNames()...) {
		if getenv(k) != "" {
			names = append(names, k)
		}
	}
	return names
}

func settingEnvNames() []string {
	names := make([]string, len(settings))
	for i, s := range settings {
		names[i] = envName(s.key)
	}
	return names
}

// install checks the configuration the service would run with (the run
// flags in runArgs, the config file, no IMDSD_* variable of this shell) and
// installs the service, or prints what it would do.
func (e svcEnv) install(ctx context.Context, o installOptions, runArgs []string, cio cmdIO) error {
	stdout, stderr := cio.stdout, cio.stderr
	var rf runFlags
	fs := flag.NewFlagSet("imdsd run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	rf.register(fs)
	var errs []error
	if rest, err := parseArgs(fs, runArgs); err != nil {
		errs = append(errs, fmt.Errorf("run flags: %w", err))
	} else if len(rest) > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q: the run flags after \"--\" are flags only", rest[0]))
	}
	if o.SocketActivation && e.goos != "linux" {
		errs = append(errs, errors.New("--socket-activation: systemd (Linux) only"))
	}
	if o.SocketActivation && rf.given("listen") {
		errs = append(errs, fmt.Errorf("--socket-activation: the service serves what imdsd.socket binds (%s); drop --listen",
			strings.Join(install.ListenAddrs(o.ServiceOptions), ", ")))
	}
	if err := errors.Join(errs...); err != nil {
		return withCode(exitUsage, err)
	}
	if !o.dryRun && e.goos != "windows" && e.euid() != 0 {
		return withCode(exitPermission, errors.New("must run as root (sudo imdsd install …)"))
	}
	if !rf.given("listen") {
		for _, a := range install.ListenAddrs(o.ServiceOptions) {
			runArgs = append(runArgs, "--listen", a)
			_ = fs.Set("listen", a)
		}
	}
	if names := ignoredEnv(cio.getenv); len(names) > 0 {
		fmt.Fprintf(stderr, "imdsd install: ignoring %s: the service does not inherit this shell's environment; use flags or the config file\n",
			strings.Join(names, ", "))
	}
	getenv := serviceGetenv(cio.getenv)
	cfg, _, _, loadErr, invalid := loadRunConfig(ctx, &rf, getenv, hostDeps(getenv))
	switch {
	case loadErr != nil:
		return withCode(exitUsage, loadErr)
	case invalid != nil:
		return withCode(exitUsage, fmt.Errorf("invalid configuration:\n%w", invalid))
	}
	if cfg.Source == "dev" {
		fmt.Fprintf(stderr, "imdsd install: note: the service will serve the dev source's made-up credentials, which AWS refuses; "+
			"give a real source (-- --source assume-role --role-arn …, see imdsd run --help) or set source in %s\n", defaultConfigPath())
	}
	exe, err := e.executable()
	if err != nil {
		return err
	}
	files, commands, err := install.Plan(e.goos, exe, runArgs, o.ServiceOptions)
	if err != nil {
		return err
	}
	var refuse string
	switch {
	case e.goos == "linux" && e.platform() != "linux-systemd":
		refuse = fmt.Sprintf("no systemd here (service manager: %s): imdsd installs a systemd service only on Linux; run \"imdsd run\" from your init system instead", e.platform())
	case e.goos == "linux" && (strings.HasPrefix(exe, "/tmp/") || strings.HasPrefix(exe, "/var/tmp/")):
		refuse = fmt.Sprintf("%s: the service cannot run a program under /tmp or /var/tmp (PrivateTmp=yes); copy imdsd to /usr/local/bin and install from there", exe)
	}
	if o.dryRun {
		printPlan(stdout, files, commands)
		if refuse != "" {
			fmt.Fprintf(stdout, "\n# Note: imdsd install would refuse here: %s.\n", refuse)
		}
		return nil
	}
	if refuse != "" {
		return errors.New(refuse)
	}
	return e.doInstall(o.ServiceOptions, exe, runArgs, files, stdout)
}

// doInstall installs the planned service. When a service is installed
// already, its files are compared with the plan: the same install changes
// nothing, another one replaces the definition (kardianos's Uninstall, then
// Install). Replacing rather than refusing makes "install again with other
// flags" the way to change them, without the alias removal and service stop
// an uninstall would cause; the running service keeps the old flags until
// it is restarted, and install says so.
func (e svcEnv) doInstall(o install.ServiceOptions, exe string, runArgs []string, files []install.File, stdout io.Writer) error {
	s, err := e.newService(nopProgram{}, install.ServiceConfig(exe, runArgs, o))
	if err != nil {
		return fmt.Errorf("service manager: %w", err)
	}
	ctx := context.Background()
	unit, socket := serviceFiles(files)
	installed, err := e.installed(s, unit)
	if err != nil {
		return err
	}
	socketPresent := e.exists(install.SystemdSocketPath)
	replaced := false
	if installed {
		if e.goos == "windows" {
			// The SCM's settings are not compared: see README.
			fmt.Fprintf(stdout, "imdsd install: the imdsd service is installed already; to change its settings, imdsd uninstall first\n")
			return e.addAliases(ctx, o)
		}
		same := e.sameFile(unit) && socketPresent == (socket != nil) && (socket == nil || e.sameFile(*socket))
		if same {
			fmt.Fprintf(stdout, "imdsd install: installed already with these settings; nothing changed\n")
			return nil
		}
		if socketPresent && socket == nil {
			if err := e.removeSocket(ctx); err != nil {
				return err
			}
		}
		if err := s.Uninstall(); err != nil {
			return fmt.Errorf("replace the installed service: remove %s: %w", unit.Path, err)
		}
		replaced = true
	}
	if socket != nil {
		if err := e.writeFile(*socket); err != nil {
			return err
		}
	}
	if err := s.Install(); err != nil {
		if socket != nil && !socketPresent {
			_ = os.Remove(e.path(socket.Path))
		}
		return fmt.Errorf("install the service (%s): %w", e.platform(), err)
	}
	if socket != nil {
		if err := e.runCmd(ctx, "systemctl", "enable", "imdsd.socket"); err != nil {
			return err
		}
	}
	if e.goos == "windows" {
		if err := e.addAliases(ctx, o); err != nil {
			return err
		}
	}
	where := unit.Path
	if where == "" {
		where = "the service control manager"
	}
	verb := "installed"
	if replaced {
		verb = "replaced"
	}
	fmt.Fprintf(stdout, "imdsd install: %s the imdsd service (%s): %s\n", verb, where, strings.Join(append([]string{exe, "run"}, runArgs...), " "))
	switch {
	case replaced && e.goos == "darwin":
		// launchd's uninstall unloaded (stopped) it.
		fmt.Fprintf(stdout, "Start it again with: sudo imdsd start\n")
	case replaced:
		fmt.Fprintf(stdout, "Restart it to apply the new settings: sudo imdsd restart\n")
	default:
		fmt.Fprintf(stdout, "Start it with: sudo imdsd start\n")
	}
	return nil
}

// serviceFiles picks the file kardianos writes and imdsd.socket (nil when
// not planned) out of a plan.
func serviceFiles(files []install.File) (unit install.File, socket *install.File) {
	for i, f := range files {
		if f.Path == install.SystemdSocketPath {
			socket = &files[i]
		} else {
			unit = f
		}
	}
	return unit, socket
}

// installed reports whether the service is installed: its file exists, or
// on Windows the SCM knows it.
func (e svcEnv) installed(s service.Service, unit install.File) (bool, error) {
	if unit.Path != "" {
		return e.exists(unit.Path), nil
	}
	_, err := s.Status()
	if errors.Is(err, service.ErrNotInstalled) {
		return false, nil
	}
	return true, nil
}

func (e svcEnv) path(p string) string { return e.root + p }

func (e svcEnv) exists(p string) bool {
	_, err := os.Lstat(e.path(p))
	return err == nil
}

func (e svcEnv) sameFile(f install.File) bool {
	b, err := os.ReadFile(e.path(f.Path))
	return err == nil && bytes.Equal(b, []byte(f.Content))
}

func (e svcEnv) writeFile(f install.File) error {
	p := e.path(f.Path)
	if err := os.WriteFile(p, []byte(f.Content), f.Mode); err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	// WriteFile's mode is filtered by the umask.
	if err := os.Chmod(p, f.Mode); err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	return nil
}

func (e svcEnv) runCmd(ctx context.Context, name string, args ...string) error {
	out, err := e.run(ctx, name, args...)
	if err != nil {
		argv := strings.Join(append([]string{name}, args...), " ")
		if o := strings.TrimSpace(string(out)); o != "" {
			return fmt.Errorf("%s: %w: %s", argv, err, o)
		}
		return fmt.Errorf("%s: %w", argv, err)
	}
	return nil
}

// removeSocket stops, disables and deletes imdsd.socket.
func (e svcEnv) removeSocket(ctx context.Context) error {
	if err := e.runCmd(ctx, "systemctl", "disable", "--now", "imdsd.socket"); err != nil {
		return err
	}
	if err := os.Remove(e.path(install.SystemdSocketPath)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", install.SystemdSocketPath, err)
	}
	return e.runCmd(ctx, "systemctl", "daemon-reload")
}

func (e svcEnv) addAliases(ctx context.Context, o install.ServiceOptions) error {
	addrs, _ := aliasAddrs(nil, o.IPv6)
	for _, ip := range addrs {
		if err := install.AddAlias(ctx, e.run, ip); err != nil {
			return err
		}
	}
	return nil
}

// printPlan writes what an install would do, files in full.
func printPlan(w io.Writer, files []install.File, commands [][]string) {
	fmt.Fprintf(w, "# imdsd install --dry-run: nothing was changed. As root, imdsd install would\n")
	fmt.Fprintf(w, "# write these files and run these commands:\n")
	for _, f := range files {
		if f.Path == "" {
			fmt.Fprintf(w, "\n# ---- register with the service control manager (no file) ----\n")
		} else {
			fmt.Fprintf(w, "\n# ---- write %s (mode %04o) ----\n", f.Path, f.Mode.Perm())
		}
		fmt.Fprint(w, f.Content)
		if !strings.HasSuffix(f.Content, "\n") {
			fmt.Fprintln(w)
		}
		if f.Path != "" {
			fmt.Fprintf(w, "# ---- end of %s ----\n", f.Path)
		}
	}
	if len(commands) > 0 {
		fmt.Fprintf(w, "\n# ---- run ----\n")
		for _, c := range commands {
			fmt.Fprintln(w, shellJoin(c))
		}
	}
	fmt.Fprintf(w, "\n# Then start it with: sudo imdsd start\n")
}

// shellJoin quotes argv for a POSIX shell where needed.
func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=+,@%[]") == "" {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

// A step is one change of uninstall: shown by --dry-run, done otherwise.
type step struct {
	show string
	do   func() error
}

// uninstall removes the service and everything install added, or prints
// what it would do.
func (e svcEnv) uninstall(ctx context.Context, dryRun bool, stdout io.Writer) error {
	if !dryRun && e.goos != "windows" && e.euid() != 0 {
		return withCode(exitPermission, errors.New("must run as root (sudo imdsd uninstall)"))
	}
	exe, err := e.executable()
	if err != nil {
		return err
	}
	s, err := e.newService(nopProgram{}, install.ServiceConfig(exe, nil, install.ServiceOptions{}))
	if err != nil {
		return fmt.Errorf("service manager: %w", err)
	}
	files, _, err := install.Plan(e.goos, exe, nil, install.ServiceOptions{})
	if err != nil {
		return err
	}
	unit, _ := serviceFiles(files)
	installed, err := e.installed(s, unit)
	if err != nil {
		return err
	}
	const name = "imdsd uninstall"
	steps := e.uninstallSteps(ctx, s, installed, unit.Path)
	if dryRun {
		fmt.Fprintf(stdout, "# imdsd uninstall --dry-run: nothing was changed. As root, imdsd uninstall would:\n")
		for _, st := range steps {
			fmt.Fprintln(stdout, st.show)
		}
	} else {
		for _, st := range steps {
			if err := st.do(); err != nil {
				return err
			}
		}
	}
	if !installed && !dryRun {
		fmt.Fprintf(stdout, "%s: imdsd was not installed; nothing else to remove\n", name)
	} else if !dryRun {
		fmt.Fprintf(stdout, "%s: removed the imdsd service and the loopback aliases\n", name)
	}
	if cfg := defaultConfigPath(); e.exists(cfg) {
		fmt.Fprintf(stdout, "%s: kept %s (yours; delete it by hand if you want)\n", name, cfg)
	}
	return nil
}

// uninstallSteps lists what removing the service takes, in order: the
// socket first (a connection to it would start the service again), then
// stop, the service manager's uninstall, and the aliases (both; an absent
// one counts as removed).
func (e svcEnv) uninstallSteps(ctx context.Context, s service.Service, installed bool, unitPath string) []step {
	var steps []step
	socket := e.goos == "linux" && e.exists(install.SystemdSocketPath)
	if socket {
		steps = append(steps, step{"systemctl disable --now imdsd.socket", func() error {
			return e.runCmd(ctx, "systemctl", "disable", "--now", "imdsd.socket")
		}})
	}
	if installed {
		switch e.goos {
		case "linux":
			// systemctl stop succeeds on a stopped unit.
			steps = append(steps,
				step{"systemctl stop imdsd.service", stopService(s)},
				step{"systemctl disable imdsd.service\nrm " + unitPath + "\nsystemctl daemon-reload", uninstallService(s)})
		case "darwin":
			steps = append(steps, step{"launchctl unload " + unitPath + "\nrm " + unitPath, uninstallService(s)})
		default:
			steps = append(steps, step{"sc.exe stop imdsd (when running)", func() error {
				if st, _ := s.Status(); st == service.StatusRunning {
					return stopService(s)()
				}
				return nil
			}}, step{"sc.exe delete imdsd\n(and remove the event log source imdsd)", uninstallService(s)})
		}
	}
	if socket {
		steps = append(steps, step{"rm " + install.SystemdSocketPath + "\nsystemctl daemon-reload", func() error {
			if err := os.Remove(e.path(install.SystemdSocketPath)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove %s: %w", install.SystemdSocketPath, err)
			}
			return e.runCmd(ctx, "systemctl", "daemon-reload")
		}})
	}
	addrs, _ := aliasAddrs(nil, true)
	steps = append(steps, step{"imdsd alias remove 169.254.169.254 fd00:ec2::254", func() error {
		var errs []error
		for _, ip := range addrs {
			errs = append(errs, install.RemoveAlias(ctx, e.run, ip))
		}
		return errors.Join(errs...)
	}})
	return steps
}

func stopService(s service.Service) func() error {
	return func() error {
		if err := s.Stop(); err != nil {
			return fmt.Errorf("stop the service: %w", err)
		}
		return nil
	}
}

func uninstallService(s service.Service) func() error {
	return func() error {
		if err := s.Uninstall(); err != nil {
			return fmt.Errorf("remove the service: %w", err)
		}
		return nil
	}
}

// control starts, stops or restarts the installed service.
func (e svcEnv) control(action string, stdout io.Writer) error {
	exe, err := e.executable()
	if err != nil {
		return err
	}
	s, err := e.newService(nopProgram{}, install.ServiceConfig(exe, nil, install.ServiceOptions{}))
	if err == nil {
		files, _, perr := install.Plan(e.goos, exe, nil, install.ServiceOptions{})
		unit, _ := serviceFiles(files)
		if installed, _ := e.installed(s, unit); perr == nil && !installed {
			return errors.New("imdsd is not installed: sudo imdsd install first")
		}
		switch action {
		case "start":
			err = s.Start()
		case "stop":
			err = s.Stop()
		default:
			err = s.Restart()
		}
	}
	if err != nil {
		return fmt.Errorf("%w\nsee: %s, and imdsd status", err, e.logHint())
	}
	past := map[string]string{"start": "started", "stop": "stopped", "restart": "restarted"}[action]
	fmt.Fprintf(stdout, "imdsd %s: %s the imdsd service (%s)", action, past, e.platform())
	if action != "stop" {
		fmt.Fprint(stdout, "; imdsd status shows what it serves")
	}
	fmt.Fprintln(stdout)
	return nil
}

// logHint is where the service's log is.
func (e svcEnv) logHint() string {
	switch e.goos {
	case "darwin":
		return "/var/log/imdsd.err.log"
	case "windows":
		return "the Application event log (source imdsd)"
	}
	return "journalctl -u imdsd"
}

// nopProgram is the service.Interface of the commands that only manage the
// service; kardianos needs one, and never calls it outside Run.
type nopProgram struct{}

func (nopProgram) Start(service.Service) error { return nil }
func (nopProgram) Stop(service.Service) error  { return nil }
