package install

import (
	"fmt"
	"strings"

	"github.com/kardianos/service"
)

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
