package install

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/kardianos/service"

	"github.com/imdsd/imdsd/systemd"
)

// This file renders the service files the way kardianos/service v1.3.0 does
// at Install, without installing anything: for `imdsd install --dry-run`
// (Plan) and the golden tests. Its template engine (template.go) and data
// maps (the Install methods of service_systemd_linux.go and
// service_darwin.go) are unexported, so they are mirrored here for the
// subset our templates use: {{Key}}, {{Key | fn}}, {{if Key}}…{{else}}…{{end}},
// {{range Key}}…{{.}}…{{end}}. TestKardianosRendersGolden (integration)
// checks the mirror against the real Install, and the daemon's install
// integration test checks the commands.

// tmplNode is a parsed template node: text, a value, an if or a range.
type tmplNode struct {
	kind      string // "text", "value", "if", "range"
	text      string // literal text, or the key
	funcs     []string
	body, alt []tmplNode
}

func parseTmpl(src string) ([]tmplNode, error) {
	nodes, stop, rest, err := parseTmplNodes(src)
	if err == nil && (stop != "" || rest != "") {
		err = fmt.Errorf("unexpected {{%s}}", stop)
	}
	return nodes, err
}

// parseTmplNodes parses up to an {{end}} or {{else}}, which it returns with
// the text after it.
func parseTmplNodes(src string) (nodes []tmplNode, stop, rest string, err error) {
	for src != "" {
		open := strings.Index(src, "{{")
		if open < 0 {
			return append(nodes, tmplNode{kind: "text", text: src}), "", "", nil
		}
		if open > 0 {
			nodes = append(nodes, tmplNode{kind: "text", text: src[:open]})
		}
		end := strings.Index(src[open:], "}}")
		if end < 0 {
			return nil, "", "", errors.New(`unclosed "{{"`)
		}
		action := strings.TrimSpace(src[open+2 : open+end])
		src = src[open+end+2:]
		if strings.HasPrefix(action, "-") || strings.HasSuffix(action, "-") {
			return nil, "", "", fmt.Errorf("trim markers are not mirrored: {{%s}}", action)
		}
		word, key, _ := strings.Cut(action, " ")
		switch word {
		case "end", "else":
			return nodes, word, src, nil
		case "if", "range":
			n := tmplNode{kind: word, text: strings.TrimSpace(key)}
			var stop string
			if n.body, stop, src, err = parseTmplNodes(src); err != nil {
				return nil, "", "", err
			}
			if stop == "else" && word == "if" {
				if n.alt, stop, src, err = parseTmplNodes(src); err != nil {
					return nil, "", "", err
				}
			}
			if stop != "end" {
				return nil, "", "", fmt.Errorf("{{%s}} without {{end}}", action)
			}
			nodes = append(nodes, n)
		default:
			parts := strings.Split(action, "|")
			n := tmplNode{kind: "value", text: strings.TrimSpace(parts[0])}
			for _, p := range parts[1:] {
				n.funcs = append(n.funcs, strings.TrimSpace(p))
			}
			nodes = append(nodes, n)
		}
	}
	return nodes, "", "", nil
}

func renderTmpl(src string, data map[string]any, funcs map[string]func(string) string) (string, error) {
	nodes, err := parseTmpl(src)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	err = execTmpl(&b, nodes, data, nil, funcs)
	return b.String(), err
}

func execTmpl(b *strings.Builder, nodes []tmplNode, data map[string]any, dot any, funcs map[string]func(string) string) error {
	lookup := func(key string) (any, error) {
		if key == "." {
			return dot, nil
		}
		v, ok := data[key]
		if !ok {
			return nil, fmt.Errorf("unknown template key %q", key)
		}
		return v, nil
	}
	for _, n := range nodes {
		if n.kind == "text" {
			b.WriteString(n.text)
			continue
		}
		v, err := lookup(n.text)
		if err != nil {
			return err
		}
		switch n.kind {
		case "value":
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("template key %q is not a string", n.text)
			}
			for _, name := range n.funcs {
				f, ok := funcs[name]
				if !ok {
					return fmt.Errorf("unknown template function %q", name)
				}
				s = f(s)
			}
			b.WriteString(s)
		case "if":
			body := n.alt
			if s, ok := v.(string); ok && s != "" {
				body = n.body
			} else if l, ok := v.([]string); ok && len(l) > 0 {
				body = n.body
			}
			if err := execTmpl(b, body, data, dot, funcs); err != nil {
				return err
			}
		case "range":
			items, ok := v.([]string)
			if !ok && v != nil {
				return fmt.Errorf("template key %q is not a list", n.text)
			}
			for _, it := range items {
				if err := execTmpl(b, n.body, data, it, funcs); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// optString, optBool and optInt read c.Option as kardianos's KeyValue does:
// a missing key or a value of another type gives the default.
func optString(o service.KeyValue, k, def string) string {
	if v, ok := o[k].(string); ok {
		return v
	}
	return def
}

func optBool(o service.KeyValue, k string, def bool) bool {
	if v, ok := o[k].(bool); ok {
		return v
	}
	return def
}

func optInt(o service.KeyValue, k string, def int) int {
	if v, ok := o[k].(int); ok {
		return v
	}
	return def
}

// renderSystemdUnit is (*systemd).Install's rendering for exe (its
// execPath), with LogOutput and LimitNOFILE unset as ServiceConfig leaves
// them.
func renderSystemdUnit(c *service.Config, exe string) (string, error) {
	o := c.Option
	data := map[string]any{
		"Description":       c.Description,
		"Path":              exe,
		"Name":              c.Name,
		"Dependencies":      c.Dependencies,
		"Arguments":         c.Arguments,
		"ChRoot":            c.ChRoot,
		"WorkingDirectory":  c.WorkingDirectory,
		"UserName":          c.UserName,
		"ReloadSignal":      optString(o, "ReloadSignal", ""),
		"PIDFile":           optString(o, "PIDFile", ""),
		"LogDirectory":      optString(o, "LogDirectory", "/var/log"),
		"OutputFileSupport": "",
		"LimitNOFILE":       "",
		"Restart":           optString(o, "Restart", "always"),
		"SuccessExitStatus": optString(o, "SuccessExitStatus", ""),
		"EnvVars":           []string(nil),
	}
	if optBool(o, "LogOutput", false) || optInt(o, "LimitNOFILE", -1) != -1 || len(c.EnvVars) > 0 {
		return "", errors.New("the mirror does not render LogOutput, LimitNOFILE or EnvVars")
	}
	funcs := map[string]func(string) string{
		"cmd":       func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` },
		"cmdEscape": func(s string) string { return strings.ReplaceAll(s, " ", `\x20`) },
	}
	return renderTmpl(optString(o, "SystemdScript", ""), data, funcs)
}

// renderLaunchdPlist is (*darwinLaunchdService).Install's rendering of a
// LaunchDaemon (not a per-user agent) for exe.
func renderLaunchdPlist(c *service.Config, exe string) (string, error) {
	o := c.Option
	b := func(v bool) string {
		if v {
			return "true"
		}
		return "false"
	}
	logDir := optString(o, "LogDirectory", "/var/log")
	data := map[string]any{
		"Name":              c.Name,
		"Path":              exe,
		"Arguments":         c.Arguments,
		"ChRoot":            c.ChRoot,
		"UserName":          c.UserName,
		"WorkingDirectory":  c.WorkingDirectory,
		"KeepAlive":         b(optBool(o, "KeepAlive", true)),
		"RunAtLoad":         b(optBool(o, "RunAtLoad", false)),
		"SessionCreate":     b(optBool(o, "SessionCreate", false)),
		"StandardOutPath":   logDir + "/" + c.Name + ".out.log",
		"StandardErrorPath": logDir + "/" + c.Name + ".err.log",
		"EnvVars":           []string(nil),
	}
	if len(c.EnvVars) > 0 || optBool(o, "UserService", false) {
		return "", errors.New("the mirror does not render EnvVars or user agents")
	}
	html := strings.NewReplacer(`&`, "&amp;", `'`, "&#39;", `<`, "&lt;", `>`, "&gt;", `"`, "&#34;")
	funcs := map[string]func(string) string{"html": html.Replace}
	return renderTmpl(optString(o, "LaunchdConfig", ""), data, funcs)
}

// renderWindowsService writes down what (*windowsService).Install passes to
// the service control manager (mgr.CreateService, SetRecoveryActions,
// eventlog.InstallAsEventCreate), with the sc.exe commands that would make
// the same service. Windows has no service file to compare; the golden file
// adds a header saying where it comes from.
func renderWindowsService(c *service.Config, exe string) string {
	o := c.Option
	bin := windowsEscapeArg(exe)
	for _, a := range c.Arguments {
		bin += " " + windowsEscapeArg(a)
	}
	account, password := c.UserName, optString(o, "Password", "")
	if account == "" {
		account = "LocalSystem"
	}
	if password == "" {
		password = "(none)"
	} else {
		password = "(set)"
	}
	deps := "(none)"
	if len(c.Dependencies) > 0 {
		deps = strings.Join(c.Dependencies, ", ")
	}
	startType := optString(o, "StartType", "automatic")
	scStart := map[string]string{"automatic": "auto", "manual": "demand", "disabled": "disabled"}[startType]
	if optBool(o, "DelayedAutoStart", false) {
		startType += ", delayed"
		scStart = "delayed-auto"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "name:              %s\n", c.Name)
	fmt.Fprintf(&b, "display name:      %s\n", c.DisplayName)
	fmt.Fprintf(&b, "description:       %s\n", c.Description)
	fmt.Fprintf(&b, "binary path:       %s\n", bin)
	fmt.Fprintf(&b, "service type:      own process\n")
	fmt.Fprintf(&b, "start type:        %s\n", startType)
	fmt.Fprintf(&b, "account:           %s\n", account)
	fmt.Fprintf(&b, "password:          %s\n", password)
	fmt.Fprintf(&b, "dependencies:      %s\n", deps)
	scActions := ""
	if action := optString(o, "OnFailure", ""); action != "" {
		delay := optString(o, "OnFailureDelayDuration", "1s")
		reset := optInt(o, "OnFailureResetPeriod", 10)
		fmt.Fprintf(&b, "on failure:        %s after %s; failure count reset after %ds without failure\n", action, delay, reset)
		scActions = fmt.Sprintf("sc.exe failure %s reset= %d actions= %s/%d\n", c.Name, reset, action, durationMillis(delay))
	}
	fmt.Fprintf(&b, "event log source:  %s (error, warning, info)\n", c.Name)
	fmt.Fprintf(&b, "\n# Equivalent commands (cmd.exe quoting):\n")
	fmt.Fprintf(&b, "sc.exe create %s binPath= \"%s\" type= own start= %s obj= \"%s\" DisplayName= \"%s\"\n",
		c.Name, strings.ReplaceAll(bin, `"`, `\"`), scStart, account, c.DisplayName)
	fmt.Fprintf(&b, "sc.exe description %s \"%s\"\n", c.Name, c.Description)
	b.WriteString(scActions)
	return b.String()
}

// durationMillis is "2s" in milliseconds, for sc.exe failure.
func durationMillis(d string) int64 {
	var n int64
	if _, err := fmt.Sscanf(d, "%ds", &n); err != nil {
		return -1
	}
	return n * 1000
}

// windowsEscapeArg quotes one argument as syscall.EscapeArg does (it exists
// only in Windows builds): quotes around an argument with a space or tab,
// backslashes doubled before a quote, and a quote escaped.
func windowsEscapeArg(s string) string {
	if s == "" {
		return `""`
	}
	if !strings.ContainsAny(s, " \t\"") {
		return s
	}
	quote := strings.ContainsAny(s, " \t")
	var b strings.Builder
	if quote {
		b.WriteByte('"')
	}
	slashes := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			slashes++
		case '"':
			b.WriteString(strings.Repeat(`\`, slashes+1))
			slashes = 0
		default:
			slashes = 0
		}
		b.WriteByte(s[i])
	}
	if quote {
		b.WriteString(strings.Repeat(`\`, slashes))
		b.WriteByte('"')
	}
	return b.String()
}

// A File is one file an install writes.
type File struct {
	// Path is where it goes; "" for the settings of the Windows service,
	// which live in the service control manager's registry, not a file.
	Path    string
	Content string
	Mode    os.FileMode
}

// Where the service files go (kardianos/service v1.3.0: systemd's
// configPath and launchd's getServiceFilePath for a system service).
const (
	SystemdUnitPath   = "/etc/systemd/system/" + serviceName + ".service"
	SystemdSocketPath = "/etc/systemd/system/" + serviceName + ".socket"
	LaunchdPlistPath  = "/Library/LaunchDaemons/" + serviceName + ".plist"
)

// Plan is what installing the service for goos changes, without changing
// anything: every file written, in full, and every command run, in order
// (files first). exe is the absolute path of the executable, args the
// arguments of `imdsd run`. It is the rendering of kardianos/service v1.3.0
// (mirrored; see the top of this file) plus what the caller does around
// kardianos's Install:
//
//   - linux (systemd): imdsd.service, which kardianos writes and enables
//     (systemctl enable, then daemon-reload); with SocketActivation also
//     imdsd.socket, written before and enabled after. The alias is added by
//     the unit's ExecStartPre= at every start, not at install.
//   - darwin (launchd): the LaunchDaemon plist; kardianos runs nothing at
//     install (launchctl load is `imdsd start`). The plist adds the alias
//     at every start.
//   - windows: the service's settings (no file); the alias, which Windows
//     keeps across reboots, is added at install with `imdsd alias add`.
func Plan(goos, exe string, args []string, o ServiceOptions) (files []File, commands [][]string, err error) {
	c := serviceConfig(goos, exe, args, o)
	aliases := []string{IMDSv4.String()}
	if o.IPv6 {
		aliases = append(aliases, IMDSv6.String())
	}
	switch goos {
	case "windows":
		return []File{{Content: renderWindowsService(c, exe)}},
			[][]string{append([]string{exe, "alias", "add"}, aliases...)}, nil
	case "darwin":
		plist, err := renderLaunchdPlist(c, exe)
		if err != nil {
			return nil, nil, err
		}
		return []File{{Path: LaunchdPlistPath, Content: plist, Mode: 0o644}}, nil, nil
	case "linux":
		unit, err := renderSystemdUnit(c, exe)
		if err != nil {
			return nil, nil, err
		}
		if o.SocketActivation {
			files = append(files, File{Path: SystemdSocketPath, Content: SocketUnit(o), Mode: 0o644})
		}
		files = append(files, File{Path: SystemdUnitPath, Content: unit, Mode: 0o644})
		commands = [][]string{
			{"systemctl", "enable", serviceName + ".service"},
			{"systemctl", "daemon-reload"},
		}
		if o.SocketActivation {
			commands = append(commands, []string{"systemctl", "enable", serviceName + ".socket"})
		}
		return files, commands, nil
	}
	return nil, nil, fmt.Errorf("plan the service for %s: only linux (systemd), darwin and windows are supported", goos)
}

// SocketUnit is imdsd.socket for o: the listeners of socket activation.
func SocketUnit(o ServiceOptions) string {
	return systemd.Socket(systemd.Options{IPv6: o.IPv6, SocketActivation: o.SocketActivation})
}

// ListenAddrs are the addresses the installed service serves unless told
// otherwise: port 80 of the IMDS addresses, as imdsd.socket binds them.
func ListenAddrs(o ServiceOptions) []string {
	addrs := []string{netip.AddrPortFrom(IMDSv4, 80).String()}
	if o.IPv6 {
		addrs = append(addrs, netip.AddrPortFrom(IMDSv6, 80).String())
	}
	return addrs
}
