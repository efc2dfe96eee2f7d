package install

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/kardianos/service"

	"github.com/imdsd/imdsd/launchd"
	"github.com/imdsd/imdsd/systemd"
)

// Where the service files go (kardianos/service v1.3.0: systemd's
// configPath and launchd's getServiceFilePath for a system service).
const (
	SystemdUnitPath   = "/etc/systemd/system/" + serviceName + ".service"
	SystemdSocketPath = "/etc/systemd/system/" + serviceName + ".socket"
	LaunchdPlistPath  = launchd.Path
)

// ErrNotInstalled is returned by Plan.Control when the service is not
// installed.
var ErrNotInstalled = errors.New("imdsd is not installed")

// Spec is the service an install puts in place.
type Spec struct {
	// Exe is the absolute path of the imdsd executable; "" is the host's
	// Executable.
	Exe string
	// Args are imdsd run's flags. Every user can read them (the unit, the
	// plist, the service control manager): never a secret.
	Args []string
	// Env goes into the service's environment file, mode 0600 (Linux
	// only): the settings that may carry secrets.
	Env []EnvVar
	ServiceOptions
}

// A Step is one change of an install, and how uninstall takes it back.
// Install runs the steps of a Plan forwards, uninstall runs them backwards.
type Step struct {
	Do   Action // what install does
	Undo Action // what uninstall does
	// wanted is false for a step listed only so that it can be undone:
	// imdsd.socket when this install does not use socket activation.
	wanted bool
	// state reads how much of the step the host has. nil: Do runs at
	// every install and counts as no change, Undo at every uninstall.
	state func() (state, error)
}

// An Action is one direction of a step: the text --dry-run prints (a
// command, or a file in full; "" when nothing is done) and what the real
// run does.
type Action struct {
	Show string
	run  func(ctx context.Context) error
}

type state int

const (
	absent  state = iota
	same          // present as planned
	differs       // present, otherwise
	unknown       // present, not comparable (the Windows service)
)

// Outcome says what Install found and did.
type Outcome int

const (
	// Installed: nothing was installed; now it is.
	Installed Outcome = iota
	// Replaced: another install was changed into this one. A running
	// service keeps its old settings until it is restarted (on macOS,
	// replacing the plist unloaded it).
	Replaced
	// Unchanged: installed exactly so already; nothing was done.
	Unchanged
	// Kept: installed already, with settings that cannot be compared (the
	// Windows service control manager); only the aliases were added.
	Kept
)

// A Plan is the ordered steps that install a Spec on a Host: the files
// written in full and the commands run, with their undoing. Building it
// changes nothing and reads none of the files it manages; Install,
// Uninstall and Control act on the host. A Plan is for one goroutine.
type Plan struct {
	host    Host
	spec    Spec
	cfg     *service.Config
	steps   []Step
	svcStep int   // index of the service manager's step
	refusal error // why Install refuses on this host (no systemd, an executable under /tmp)
	svc     service.Service
}

// Plan lists the steps that install s on h, in order:
//
//   - the loopback aliases: added at install on Windows, which keeps them
//     across reboots; elsewhere added at every start by the unit's
//     ExecStartPre= or the plist, so install does nothing here;
//   - (linux) the variables of s.Env, in EnvironmentPath;
//   - (linux, socket activation) imdsd.socket, written before the service
//     that requires it;
//   - the service: kardianos/service writes the unit or plist (and on
//     Linux runs systemctl enable, daemon-reload), or registers the
//     Windows service;
//   - (linux, socket activation) systemctl enable imdsd.socket.
//
// Uninstall is the same list backwards: the socket first (a connection
// would start the service again), then the service stopped and removed,
// then the environment variables and the aliases.
func (h Host) Plan(s Spec) (*Plan, error) {
	if s.Exe == "" {
		exe, err := h.Executable()
		if err != nil {
			return nil, err
		}
		s.Exe = exe
	}
	switch h.GOOS {
	case "linux", "darwin", "windows":
	default:
		return nil, fmt.Errorf("plan the service for %s: only linux (systemd), darwin (launchd) and windows are supported", h.GOOS)
	}
	if strings.ContainsFunc(s.Exe+s.UserName, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("plan the service: a control character in the executable's path %q or the user name %q", s.Exe, s.UserName)
	}
	for _, g := range s.Groups {
		if !plainName(g) {
			return nil, fmt.Errorf("plan the service: group %q: the service's groups are names or IDs of letters, digits, '_', '-' and '.' only", g)
		}
	}
	if len(s.Env) > 0 && h.GOOS != "linux" {
		return nil, fmt.Errorf("%s: every user can read the service's definition on %s, which has no environment file; set it in the config file (readable by the service only) instead",
			s.Env[0].Name, h.GOOS)
	}
	for _, v := range s.Env {
		if err := checkEnvVar(v); err != nil {
			return nil, err
		}
	}
	p := &Plan{host: h, spec: s, cfg: serviceConfig(h.GOOS, s.Exe, s.Args, s.ServiceOptions)}
	for _, k := range []string{"SystemdScript", "LaunchdConfig"} {
		if text, _ := p.cfg.Option[k].(string); strings.Contains(text, "{{") {
			return nil, errors.New(`plan the service: "{{" in the executable's path or an argument: kardianos/service would read it as a template key`)
		}
	}
	p.steps = append(p.steps, p.aliasStep())
	if h.GOOS == "linux" {
		p.steps = append(p.steps, p.envStep(), p.socketFileStep())
	}
	p.svcStep = len(p.steps)
	p.steps = append(p.steps, p.serviceStep())
	if h.GOOS == "linux" {
		p.steps = append(p.steps, p.enableSocketStep())
	}
	// Every reason is given at once: fixing one should not reveal the next.
	var refusals []error
	if h.GOOS == "linux" && h.Platform != "linux-systemd" {
		refusals = append(refusals, fmt.Errorf("no systemd here (service manager: %s): imdsd installs a systemd service only on Linux; run \"imdsd run\" from your init system instead", h.Platform))
	}
	switch {
	case h.GOOS == "linux" && (strings.HasPrefix(s.Exe, "/tmp/") || strings.HasPrefix(s.Exe, "/var/tmp/")):
		refusals = append(refusals, fmt.Errorf("%s: the service cannot run a program under /tmp or /var/tmp (PrivateTmp=yes); copy imdsd to /usr/local/bin (make install) and install from there", s.Exe))
	case h.GOOS == "linux" && s.UserName == "":
		// The dynamic user must reach the program: a binary under a
		// private home directory (go install's ~/go/bin of root) would
		// make every start fail on ConditionFileIsExecutable=.
		if where := closedTo(h.Root, s.Exe); where != "" {
			refusals = append(refusals, fmt.Errorf("%s: the service's user cannot reach it (%s is not open to other users); copy imdsd to /usr/local/bin (make install) and install from there", s.Exe, where))
		}
	}
	p.refusal = errors.Join(refusals...)
	return p, nil
}

// closedTo names the first directory on exe's path (under root) that other
// users cannot enter, or exe itself when they cannot run it; "" when the
// path is open (or cannot be read: then Install finds out).
func closedTo(root, exe string) string {
	dir := "/"
	for _, part := range strings.Split(strings.Trim(filepath.Dir(exe), "/"), "/") {
		if part == "" {
			continue
		}
		dir = filepath.Join(dir, part)
		if fi, err := os.Stat(root + dir); err == nil && fi.Mode().Perm()&0o001 == 0 {
			return dir
		}
	}
	if fi, err := os.Stat(root + exe); err == nil && fi.Mode().Perm()&0o001 == 0 {
		return exe
	}
	return ""
}

// Steps are the steps an install of the Spec takes on a host where nothing
// is installed, in order.
func (p *Plan) Steps() []Step {
	var out []Step
	for _, s := range p.steps {
		if s.wanted {
			out = append(out, s)
		}
	}
	return out
}

// DryRun is what imdsd install --dry-run prints: what Install does on a
// host where nothing is installed, step by step, files in full, and why it
// would refuse on this one.
func (p *Plan) DryRun() string {
	var b strings.Builder
	b.WriteString("# imdsd install --dry-run: nothing was changed. As root, imdsd install would\n" +
		"# write these files and run these commands, in this order:\n")
	for _, s := range p.Steps() {
		if s.Do.Show != "" {
			b.WriteString("\n" + strings.TrimSuffix(s.Do.Show, "\n") + "\n")
		}
	}
	b.WriteString("\n# Then start it with: sudo imdsd start\n")
	if p.refusal != nil {
		fmt.Fprintf(&b, "\n# Note: imdsd install would refuse here: %s.\n", strings.ReplaceAll(p.refusal.Error(), "\n", ";\n#   "))
	}
	return b.String()
}

// DryRunRemoval is what imdsd uninstall --dry-run prints: what Uninstall
// would do on this host, in order.
func (p *Plan) DryRunRemoval() (string, error) {
	undo, _, err := p.Removal()
	b := "# imdsd uninstall --dry-run: nothing was changed. As root, imdsd uninstall would:\n"
	for _, a := range undo {
		b += a.Show + "\n"
	}
	return b, err
}

// Where names the service's definition: its file, or the service control
// manager.
func (p *Plan) Where() string {
	switch p.host.GOOS {
	case "linux":
		return SystemdUnitPath
	case "darwin":
		return LaunchdPlistPath
	}
	return "the service control manager"
}

// Install makes the host match the plan. Installed exactly so already, it
// changes nothing (Unchanged). Installed otherwise, it undoes the steps
// this install does not want (backwards), then does the ones that are
// missing or differ (forwards): replacing the definition rather than
// refusing makes "install again with other flags" the way to change them,
// without the alias removal and stop an uninstall would cause. When a step
// fails, the steps this run added are undone.
func (p *Plan) Install(ctx context.Context) (Outcome, error) {
	if p.refusal != nil {
		return 0, p.refusal
	}
	states, err := p.states()
	if err != nil {
		return 0, err
	}
	if states[p.svcStep] == unknown {
		return Kept, p.runAlways(ctx)
	}
	changed := false
	for i, s := range p.steps {
		changed = changed || (s.state != nil && s.wanted != (states[i] != absent)) || (s.wanted && states[i] == differs)
	}
	if !changed {
		return Unchanged, nil
	}
	for i := len(p.steps) - 1; i >= 0; i-- {
		if s := p.steps[i]; !s.wanted && s.state != nil && states[i] != absent {
			if err := s.Undo.run(ctx); err != nil {
				return 0, err
			}
		}
	}
	for i, s := range p.steps {
		if !s.wanted || (s.state != nil && states[i] == same) || s.Do.run == nil {
			continue
		}
		if err := s.Do.run(ctx); err != nil {
			return 0, errors.Join(err, p.rollback(ctx, i, states))
		}
	}
	if states[p.svcStep] == absent {
		return Installed, nil
	}
	return Replaced, nil
}

// Summary says what an Install with outcome o did, and what to do next.
func (p *Plan) Summary(o Outcome) string {
	switch o {
	case Unchanged:
		return "installed already with these settings; nothing changed"
	case Kept: // the service control manager's settings are not compared: see README
		return "the imdsd service is installed already; to change its settings, imdsd uninstall first"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s the imdsd service (%s): %s", map[Outcome]string{Installed: "installed", Replaced: "replaced"}[o],
		p.Where(), strings.Join(append([]string{p.spec.Exe, "run"}, p.spec.Args...), " "))
	for _, v := range p.spec.Env {
		fmt.Fprintf(&b, "\n%s is in %s (mode 0600), not in the unit, which every user can read", v.Name, EnvironmentPath)
	}
	switch {
	case o == Installed:
		b.WriteString("\nStart it with: sudo imdsd start")
	case p.host.GOOS == "darwin": // replacing the plist unloaded the daemon
		b.WriteString("\nStart it again with: sudo imdsd start")
	default:
		b.WriteString("\nRestart it to apply the new settings: sudo imdsd restart")
	}
	return b.String()
}

// rollback undoes the steps before failed that this run added.
func (p *Plan) rollback(ctx context.Context, failed int, states []state) error {
	var errs []error
	for i := failed - 1; i >= 0; i-- {
		if s := p.steps[i]; s.wanted && s.state != nil && states[i] == absent {
			if err := s.Undo.run(ctx); err != nil {
				errs = append(errs, fmt.Errorf("undo: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// runAlways runs the Do of the steps without state (the Windows aliases).
func (p *Plan) runAlways(ctx context.Context) error {
	for _, s := range p.steps {
		if s.wanted && s.state == nil && s.Do.run != nil {
			if err := s.Do.run(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *Plan) states() ([]state, error) {
	states := make([]state, len(p.steps))
	for i, s := range p.steps {
		if s.state == nil {
			continue
		}
		st, err := s.state()
		if err != nil {
			return nil, err
		}
		states[i] = st
	}
	return states, nil
}

// Removal is what Uninstall would do on this host, in order, and whether
// the service is installed; it changes nothing.
func (p *Plan) Removal() (undo []Action, installed bool, err error) {
	states, err := p.states()
	if err != nil {
		return nil, false, err
	}
	for i := len(p.steps) - 1; i >= 0; i-- {
		if s := p.steps[i]; s.state == nil || states[i] != absent {
			undo = append(undo, s.Undo)
		}
	}
	return undo, states[p.svcStep] != absent, nil
}

// Uninstall undoes every step present on the host, backwards, and reports
// whether the service was installed. Whatever Spec the plan was built for,
// it removes all four aliases (IMDS and container endpoint, IPv4 and
// IPv6), imdsd.socket and the environment variables when they are there.
// Uninstalling what is not installed succeeds.
func (p *Plan) Uninstall(ctx context.Context) (installed bool, err error) {
	undo, installed, err := p.Removal()
	if err != nil {
		return installed, err
	}
	for _, a := range undo {
		if err := a.run(ctx); err != nil {
			return installed, err
		}
	}
	return installed, nil
}

// Control starts, stops or restarts (action) the installed service through
// the service manager; ErrNotInstalled when it is not installed.
func (p *Plan) Control(action string) error {
	s, err := p.service()
	if err != nil {
		return err
	}
	if st, err := p.steps[p.svcStep].state(); err == nil && st == absent {
		return ErrNotInstalled
	}
	switch action {
	case "start":
		return s.Start()
	case "stop":
		return s.Stop()
	case "restart":
		return s.Restart()
	}
	return fmt.Errorf("control the service: unknown action %q", action)
}

// service is kardianos's service for the plan, made once.
func (p *Plan) service() (service.Service, error) {
	if p.svc == nil {
		s, err := p.host.NewService(nopProgram{}, p.cfg)
		if err != nil {
			return nil, fmt.Errorf("service manager: %w", err)
		}
		p.svc = s
	}
	return p.svc, nil
}

// aliasStep: the IMDS addresses (and with Containers the container
// endpoint's) on the loopback interface. Uninstall removes all four,
// whatever the install added; an absent one counts as removed.
func (p *Plan) aliasStep() Step {
	addrs, _ := AliasAddrs(nil, p.spec.IPv6, p.spec.Containers)
	all, _ := AliasAddrs(nil, true, true)
	st := Step{wanted: true, Undo: Action{
		Show: "imdsd alias remove " + joinAddrs(all),
		run: func(ctx context.Context) error {
			var errs []error
			for _, ip := range all {
				errs = append(errs, RemoveAlias(ctx, p.host.Run, ip))
			}
			return errors.Join(errs...)
		},
	}}
	if p.host.GOOS == "windows" {
		st.Do = Action{Show: windowsEscapeArg(p.spec.Exe) + " alias add " + joinAddrs(addrs), run: func(ctx context.Context) error {
			for _, ip := range addrs {
				if err := AddAlias(ctx, p.host.Run, ip); err != nil {
					return err
				}
			}
			return nil
		}}
	}
	return st
}

// envStep: the variables of Spec.Env in the environment file.
func (p *Plan) envStep() Step {
	block := envBlock(p.spec.Env, false)
	return Step{
		wanted: block != "",
		Do: Action{
			Show: fmt.Sprintf("# ---- add to %s (mode 0600; its other lines are kept) ----\n%s# ---- end of %[1]s ----\n",
				EnvironmentPath, envBlock(p.spec.Env, true)),
			run: func(context.Context) error { return p.host.setEnvBlock(block) },
		},
		Undo: Action{
			Show: "remove imdsd install's lines from " + EnvironmentPath + " (its other lines are kept)",
			run:  func(context.Context) error { return p.host.setEnvBlock("") },
		},
		state: func() (state, error) {
			content, err := p.host.readEnvFile()
			if errors.Is(err, fs.ErrPermission) && p.host.exists(EnvironmentPath) {
				return differs, nil // not root: uninstall --dry-run shows the removal
			}
			if _, have := cutEnvBlock(content); err != nil || have == "" {
				return absent, err
			} else if have == block {
				return same, nil
			}
			return differs, nil
		},
	}
}

// socketFileStep: imdsd.socket, for socket activation.
func (p *Plan) socketFileStep() Step {
	content := systemd.Socket(p.spec.systemd())
	return Step{
		wanted: p.spec.SocketActivation,
		Do: Action{
			Show: fileShow(SystemdSocketPath, content),
			run:  func(context.Context) error { return p.host.writeFile(SystemdSocketPath, content) },
		},
		Undo: Action{
			Show: "rm " + SystemdSocketPath + "\nsystemctl daemon-reload",
			run: func(ctx context.Context) error {
				if err := os.Remove(p.host.path(SystemdSocketPath)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("remove %s: %w", SystemdSocketPath, err)
				}
				return p.host.command(ctx, "systemctl", "daemon-reload")
			},
		},
		state: func() (state, error) { return p.host.fileState(SystemdSocketPath, content) },
	}
}

// enableSocketStep: systemctl enable imdsd.socket, once the service that
// the socket starts is installed. It is there when imdsd.socket is.
func (p *Plan) enableSocketStep() Step {
	file := p.socketFileStep()
	return Step{
		wanted: p.spec.SocketActivation,
		Do: Action{
			Show: "systemctl enable imdsd.socket",
			run:  func(ctx context.Context) error { return p.host.command(ctx, "systemctl", "enable", "imdsd.socket") },
		},
		Undo: Action{
			Show: "systemctl disable --now imdsd.socket",
			run: func(ctx context.Context) error {
				return p.host.command(ctx, "systemctl", "disable", "--now", "imdsd.socket")
			},
		},
		state: file.state,
	}
}

// serviceStep: the service manager's definition, through kardianos.
func (p *Plan) serviceStep() Step {
	st := Step{wanted: true, Do: Action{run: p.installService}}
	switch p.host.GOOS {
	case "linux":
		unit := p.cfg.Option["SystemdScript"].(string)
		st.Do.Show = fileShow(SystemdUnitPath, unit) + "systemctl enable imdsd.service\nsystemctl daemon-reload\n"
		// systemctl stop succeeds on a stopped unit.
		st.Undo = Action{
			Show: "systemctl stop imdsd.service\nsystemctl disable imdsd.service\nrm " + SystemdUnitPath + "\nsystemctl daemon-reload",
			run:  p.removeService(false),
		}
		st.state = func() (state, error) { return p.host.fileState(SystemdUnitPath, unit) }
	case "darwin":
		plist := p.cfg.Option["LaunchdConfig"].(string)
		st.Do.Show = fileShow(LaunchdPlistPath, plist) // launchctl load is imdsd start
		// kardianos's Uninstall unloads (stops) it first.
		st.Undo = Action{Show: "launchctl unload " + LaunchdPlistPath + "\nrm " + LaunchdPlistPath, run: p.removeService(true)}
		st.state = func() (state, error) { return p.host.fileState(LaunchdPlistPath, plist) }
	default:
		st.Do.Show = "# ---- register with the service control manager (no file) ----\n" + renderWindowsService(p.cfg, p.spec.Exe)
		st.Undo = Action{Show: "sc.exe stop imdsd (when running)\nsc.exe delete imdsd\n(and remove the event log source imdsd)", run: p.removeService(false)}
		st.state = func() (state, error) {
			s, err := p.service()
			if err != nil {
				return absent, err
			}
			if _, err := s.Status(); errors.Is(err, service.ErrNotInstalled) {
				return absent, nil
			}
			return unknown, nil
		}
	}
	return st
}

// installService is kardianos's Install, after its Uninstall when another
// definition is there (Install refuses to overwrite one).
func (p *Plan) installService(context.Context) error {
	s, err := p.service()
	if err != nil {
		return err
	}
	if where := p.Where(); p.host.GOOS != "windows" && p.host.exists(where) {
		if err := s.Uninstall(); err != nil {
			return fmt.Errorf("replace the installed service: remove %s: %w", where, err)
		}
	}
	if err := s.Install(); err != nil {
		return fmt.Errorf("install the service (%s): %w", p.host.Platform, err)
	}
	return nil
}

// removeService stops the service (unless the service manager's uninstall
// does) and removes it.
func (p *Plan) removeService(uninstallStops bool) func(context.Context) error {
	return func(context.Context) error {
		s, err := p.service()
		if err != nil {
			return err
		}
		stop := !uninstallStops
		if p.host.GOOS == "windows" { // the SCM refuses to stop a stopped service
			st, _ := s.Status()
			stop = st == service.StatusRunning
		}
		if stop {
			if err := s.Stop(); err != nil {
				return fmt.Errorf("stop the service: %w", err)
			}
		}
		if err := s.Uninstall(); err != nil {
			return fmt.Errorf("remove the service: %w", err)
		}
		return nil
	}
}

// plainName reports whether name is a group name systemd's
// SupplementaryGroups= takes as it is: no space, specifier (%) or quote to
// escape. Names outside this set are refused rather than escaped.
func plainName(name string) bool {
	if name == "" || name[0] == '-' || name[0] == '.' {
		return false
	}
	return !strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
	})
}

// fileShow is how --dry-run prints a file: in full, between markers.
func fileShow(path, content string) string {
	if !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	return fmt.Sprintf("# ---- write %s (mode 0644) ----\n%s# ---- end of %[1]s ----\n", path, content)
}

func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

// nopProgram is the service.Interface of the commands that only manage the
// service; kardianos needs one, and never calls it outside Run.
type nopProgram struct{}

func (nopProgram) Start(service.Service) error { return nil }
func (nopProgram) Stop(service.Service) error  { return nil }
