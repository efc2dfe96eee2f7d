package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// The commands that talk to a running imdsd through its admin API: status,
// creds, mfa and reload. They find its socket the way imdsd run chose it
// (adminTarget), and end with the same exit codes for the same outcomes:
// 3 when no imdsd answers, 4 when the socket refuses this user.

// adminTarget is the --admin-socket and --config flags every admin command
// takes.
type adminTarget struct {
	socket string
	config string
}

func (a *adminTarget) register(fs *flag.FlagSet) {
	fs.StringVar(&a.socket, "admin-socket", "", "admin API socket of the running imdsd (default: admin_socket of the config file, else the default path of imdsd run)")
	fs.StringVar(&a.config, configFlag, "", "config file whose admin_socket to use (default "+defaultConfigPath()+" when it exists; env IMDSD_CONFIG)")
}

// path is the admin socket to use: --admin-socket, IMDSD_ADMIN_SOCKET, the
// admin_socket of the config file, else the default of imdsd run. A config
// file named with --config or IMDSD_CONFIG must be readable; the default
// one is used when it is (it is often root's only, mode 0600).
func (a *adminTarget) path(getenv func(string) string) (string, error) {
	if a.socket != "" {
		return a.socket, nil
	}
	if p := getenv("IMDSD_ADMIN_SOCKET"); p != "" {
		return p, nil
	}
	file, explicit := firstNonEmpty(a.config, getenv("IMDSD_CONFIG")), true
	if file == "" {
		file, explicit = defaultConfigPath(), false
	}
	f, err := os.Open(file)
	if err != nil {
		if explicit {
			return "", usageErrorf("config: cannot read %s: %w", file, err)
		}
		return defaultAdminSocket(getenv), nil
	}
	defer f.Close()
	var c Config
	// Other keys' problems are imdsd run's to report; a valid
	// admin_socket is taken whatever else the file holds.
	_ = parseConfigFile(&c, f, file)
	return firstNonEmpty(c.AdminSocket, defaultAdminSocket(getenv)), nil
}

// adminTimeout bounds one admin request but POST /reload, which waits as
// long as asked (reloadCmd).
const adminTimeout = 10 * time.Second

// adminCall does one request to the admin API at path and decodes a JSON
// answer into v (when not nil); it returns the status code. Errors carry
// the exit code of their case: 3 when no imdsd answers, 4 when the socket
// refuses this user or cannot be trusted (dialAdmin).
func adminCall(ctx context.Context, path, method, route string, body io.Reader, v any) (int, error) {
	return adminCallTimeout(ctx, path, method, route, body, v, adminTimeout)
}

func adminCallTimeout(ctx context.Context, path, method, route string, body io.Reader, v any, timeout time.Duration) (int, error) {
	resp, err := adminDo(ctx, path, method, route, body, timeout)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return status, err
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
			return resp.StatusCode, fmt.Errorf("read the answer of %s: %w", route, err)
		}
	}
	return resp.StatusCode, nil
}

// adminDo sends one request to the admin API at path and returns the
// answer for the caller to read and close. Its errors carry the exit code
// of their case, as adminCall's do; on a refusal (401, 403) it returns the
// answer too, closed, for its status.
func adminDo(ctx context.Context, path, method, route string, body io.Reader, timeout time.Duration) (*http.Response, error) {
	client, base, err := adminClient(path, timeout)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, base+route, body)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		var ce *cmdError
		if errors.As(err, &ce) { // from the dialer: said already
			return nil, ce
		}
		var ue *url.Error
		if errors.As(err, &ue) && ue.Timeout() {
			return nil, withCode(exitUnreachable, fmt.Errorf("reach imdsd at %s: no answer within %s", path, timeout))
		}
		return nil, withCode(exitUnreachable, fmt.Errorf("reach imdsd at %s: %w; is imdsd running? (imdsd run, or sudo imdsd start)", path, err))
	}
	if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized {
		resp.Body.Close()
		return resp, withCode(exitPermission, fmt.Errorf("reach imdsd at %s: permission denied (HTTP %d); run as the user imdsd runs as, or with sudo", path, resp.StatusCode))
	}
	return resp, nil
}

// roleQuery is the ?role= of an admin request, "" for the default role.
func roleQuery(role string) string {
	if role == "" {
		return ""
	}
	return "?role=" + url.QueryEscape(role)
}

// roleList names the roles of a status document.
func roleList(st statusDoc) string {
	var names []string
	for _, r := range st.Roles {
		names = append(names, r.Name)
	}
	return strings.Join(names, ", ")
}

var statusSpec = commandSpec{
	name:     "status",
	synopsis: "status [--json] [--admin-socket PATH] [--config FILE]",
	summary:  "what the running imdsd serves, and why not",
	help: `Show what the running imdsd serves: source, role, expiry of the
credentials (never the secrets), the next refresh and the last error.

After a reload that changed the source, until the new source has obtained
credentials the old one keeps serving and status shows both: the running
configuration, and a line such as
  pending:      new source failing since 2026-11-22 10:00:03 (assume-role, 3 failed attempts; next try in 41s)
with the new source's last error. The new source takes over on its first
success, or as soon as the old credentials expire.

The admin socket is found as imdsd run chose it: --admin-socket,
IMDSD_ADMIN_SOCKET, admin_socket of the config file, else the default. It
is used only if no other user can have put it there: its directory must
belong to root or this user (or to the service user, placed by root, as
systemd's RuntimeDirectory is), and the process answering must run as
root, this user or the socket's owner.

Exit status:
  0  valid credentials are served (a reload may be pending)
  1  no valid credentials are served
  3  no imdsd answers at the admin socket (none there, or a stale one)
  4  permission denied: the socket refuses this user (run with sudo, or as
     a member of its group), or it cannot be trusted (the message says why)

Examples:
  sudo imdsd status
  imdsd status --json | jq .credentials.expires_at
  imdsd status --json | jq .pending
`,
	newCmd: func(cio cmdIO) command { return &statusCmd{cmdIO: cio} },
}

type statusCmd struct {
	cmdIO
	admin  adminTarget
	asJSON bool
}

func (c *statusCmd) flags(fs *flag.FlagSet) {
	c.admin.register(fs)
	fs.BoolVar(&c.asJSON, "json", false, "print the status document as JSON")
}

func (c *statusCmd) validate(args []string) error { return takesFlagsOnly("imdsd status", args) }

func (c *statusCmd) Run(ctx context.Context, _ []string) error {
	path, err := c.admin.path(c.getenv)
	if err != nil {
		return err
	}
	var st statusDoc
	if _, err := adminCall(ctx, path, "GET", "/status", nil, &st); err != nil {
		return err
	}
	if c.asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
	} else {
		printStatus(c.stdout, st, time.Now())
	}
	if !st.Healthy {
		return silentError{exitError}
	}
	return nil
}

func printStatus(w io.Writer, st statusDoc, now time.Time) {
	if len(st.Roles) > 1 {
		printRolesStatus(w, st, now)
		return
	}
	health := "serving valid credentials"
	if !st.Healthy {
		health = "NOT serving valid credentials"
	}
	fmt.Fprintf(w, "imdsd %s: %s\n", st.Version, health)
	fmt.Fprintf(w, "  source:       %s\n", st.Source)
	role := st.RoleName
	if st.RoleARN != "" {
		role += " (" + st.RoleARN + ")"
	}
	fmt.Fprintf(w, "  role:         %s\n", role)
	fmt.Fprintf(w, "  region:       %s\n", st.Region)
	fmt.Fprintf(w, "  listening:    %s (tokens %s)\n", strings.Join(st.Listen, ", "), st.TokenMode)
	if len(st.ContainerListen) > 0 {
		fmt.Fprintf(w, "  containers:   %s\n", strings.Join(st.ContainerListen, ", "))
	}
	var rs roleStatus
	if len(st.Roles) == 1 {
		rs = st.Roles[0]
	} else {
		rs = roleStatus{Credentials: st.Credentials, NextRefresh: st.NextRefresh, LastError: st.LastError, Pending: st.Pending, ShortLifetime: st.ShortLifetime}
	}
	printRoleState(w, rs, now)
}

// printRolesStatus is imdsd status with several roles: what they share,
// then a block per role, the default first.
func printRolesStatus(w io.Writer, st statusDoc, now time.Time) {
	var failing []string
	for _, r := range st.Roles {
		if !r.Healthy {
			failing = append(failing, r.Name)
		}
	}
	health := fmt.Sprintf("serving valid credentials for all %d roles", len(st.Roles))
	if len(failing) > 0 {
		health = "NOT serving valid credentials for " + strings.Join(failing, ", ")
	}
	fmt.Fprintf(w, "imdsd %s: %s\n", st.Version, health)
	fmt.Fprintf(w, "  region:       %s\n", st.Region)
	fmt.Fprintf(w, "  listening:    %s (tokens %s)\n", strings.Join(st.Listen, ", "), st.TokenMode)
	if len(st.ContainerListen) > 0 {
		fmt.Fprintf(w, "  containers:   %s\n", strings.Join(st.ContainerListen, ", "))
	}
	for _, r := range st.Roles {
		title := r.Name
		if r.Name == st.DefaultRole {
			title += " (default: listed by IMDS)"
		}
		fmt.Fprintf(w, "role %s\n", title)
		fmt.Fprintf(w, "  source:       %s\n", r.Source)
		if r.RoleARN != "" {
			fmt.Fprintf(w, "  role ARN:     %s\n", r.RoleARN)
		}
		printRoleState(w, r, now)
	}
}

// printRoleState writes the credentials, schedule, errors and pending
// source of one role.
func printRoleState(w io.Writer, r roleStatus, now time.Time) {
	if c := r.Credentials; c != nil {
		fmt.Fprintf(w, "  credentials:  key %s, obtained %s, expire %s (in %s)\n", c.KeyID,
			c.ObtainedAt.Local().Format(time.DateTime), c.ExpiresAt.Local().Format(time.DateTime), c.ExpiresAt.Sub(now).Round(time.Second))
	} else {
		fmt.Fprintf(w, "  credentials:  none yet\n")
	}
	if !r.NextRefresh.IsZero() {
		fmt.Fprintf(w, "  next refresh: %s (in %s)\n", r.NextRefresh.Local().Format(time.DateTime), r.NextRefresh.Sub(now).Round(time.Second))
	}
	if r.ShortLifetime != "" {
		fmt.Fprintf(w, "  short lifetime: STS grants only %s (a role's maximum session, role chaining or --duration): refreshed at half-life,\n"+
			"                so clients may hold these credentials with under 30 minutes left\n", r.ShortLifetime)
	}
	if r.ContainerTokenID != "" {
		fmt.Fprintf(w, "  containers:   served, token %s (imdsd container-env %s)\n", r.ContainerTokenID, r.Name)
	}
	if e := r.LastError; e != nil {
		fmt.Fprintf(w, "  last error:   %s (%s, %d failed attempts, last at %s)\n                %s\n",
			e.Code, e.Class, e.Failures, e.At.Local().Format(time.DateTime), strings.ReplaceAll(e.Message, "\n", "\n                "))
	}
	if p := r.Pending; p != nil {
		next := ""
		if !p.NextAttempt.IsZero() {
			next = fmt.Sprintf("; next try in %s", max(p.NextAttempt.Sub(now), 0).Round(time.Second))
		}
		if p.FailingSince != nil && p.LastError != nil {
			fmt.Fprintf(w, "  pending:      new source failing since %s (%s, %d failed attempts%s)\n", p.FailingSince.Local().Format(time.DateTime), p.Source, p.LastError.Failures, next)
			fmt.Fprintf(w, "                %s (%s): %s\n", p.LastError.Code, p.LastError.Class, strings.ReplaceAll(p.LastError.Message, "\n", "\n                "))
		} else {
			fmt.Fprintf(w, "  pending:      new source waiting for its first answer since %s (%s)\n", p.Since.Local().Format(time.DateTime), p.Source)
		}
		fmt.Fprintf(w, "                the running source above serves until it obtains credentials\n")
	}
}

var credsSpec = commandSpec{
	name:     "creds",
	synopsis: "creds [--role NAME] [--format summary|process|env] [--admin-socket PATH]",
	summary:  "the served credentials (credential_process JSON with --format process)",
	help: `Print the credentials the running imdsd serves. The default summary shows
no secrets; --format process prints the credential_process JSON, so an AWS
CLI profile can use imdsd too:

  [profile imdsd]
  credential_process = sudo imdsd creds --format process

--format env prints export lines for a shell. --role picks one of several
roles (default: the default role, the one IMDS lists).

Examples:
  imdsd creds
  eval "$(sudo imdsd creds --format env)"
  sudo imdsd creds --role deploy --format process
`,
	newCmd: func(cio cmdIO) command { return &credsCmd{cmdIO: cio} },
}

type credsCmd struct {
	cmdIO
	admin  adminTarget
	format string
	role   string
}

func (c *credsCmd) flags(fs *flag.FlagSet) {
	c.admin.register(fs)
	fs.StringVar(&c.role, "role", "", "the role `NAME` (default: the default role)")
	fs.StringVar(&c.format, "format", "summary", "summary (no secrets), process (credential_process JSON) or env")
}

func (c *credsCmd) validate(args []string) error {
	var errs []error
	if c.format != "summary" && c.format != "process" && c.format != "env" {
		errs = append(errs, fmt.Errorf("--format: must be summary, process or env (got %q)", c.format))
	}
	return errors.Join(append(errs, takesFlagsOnly("imdsd creds", args))...)
}

func (c *credsCmd) Run(ctx context.Context, _ []string) error {
	path, err := c.admin.path(c.getenv)
	if err != nil {
		return err
	}
	if c.format == "summary" {
		var st statusDoc
		if _, err := adminCall(ctx, path, "GET", "/status", nil, &st); err != nil {
			return err
		}
		name := firstNonEmpty(c.role, st.DefaultRole, st.RoleName)
		for _, r := range st.Roles {
			if r.Name != name {
				continue
			}
			if r.Credentials == nil || !r.Healthy {
				return fmt.Errorf("role %s: no valid credentials held; see imdsd status", name)
			}
			fmt.Fprintf(c.stdout, "role %s, key %s, expires %s\n", firstNonEmpty(r.RoleARN, r.Name), r.Credentials.KeyID, r.Credentials.ExpiresAt.UTC().Format(time.RFC3339))
			return nil
		}
		return withCode(exitUsage, fmt.Errorf("--role: no role %q; the roles are %s", name, roleList(st)))
	}
	var raw json.RawMessage
	code, err := adminCall(ctx, path, "GET", "/credentials"+roleQuery(c.role), nil, &raw)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		var e struct{ Error string }
		_ = json.Unmarshal(raw, &e)
		// A credential_process failure: non-zero exit, message on stderr.
		if code == http.StatusNotFound {
			return withCode(exitUsage, errors.New("--role: "+e.Error))
		}
		return errors.New(e.Error)
	}
	var pc processCreds
	if err := json.Unmarshal(raw, &pc); err != nil {
		return fmt.Errorf("read the credentials: %w", err)
	}
	if c.format == "process" {
		b, _ := json.Marshal(pc)
		fmt.Fprintf(c.stdout, "%s\n", b)
		return nil
	}
	fmt.Fprintf(c.stdout, "export AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\n", pc.AccessKeyID, pc.SecretAccessKey)
	if pc.SessionToken != "" {
		fmt.Fprintf(c.stdout, "export AWS_SESSION_TOKEN=%s\n", pc.SessionToken)
	}
	return nil
}

var mfaSpec = commandSpec{
	name:     "mfa",
	synopsis: "mfa [--role NAME] CODE [--admin-socket PATH]",
	summary:  "hand an MFA code to the running imdsd",
	help: `Hand a current MFA code to the running imdsd, which cannot prompt. Needed
when mfa_serial is set without mfa_command: with assume-role about once per
MFA session (36h), with session-token at every refresh. With several roles,
--role names the one the code is for (default: the default role).

Examples:
  sudo imdsd mfa 123456
  sudo imdsd mfa --role admin 654321
`,
	newCmd: func(cio cmdIO) command { return &mfaCmd{cmdIO: cio} },
}

type mfaCmd struct {
	cmdIO
	admin adminTarget
	role  string
}

func (c *mfaCmd) flags(fs *flag.FlagSet) {
	c.admin.register(fs)
	fs.StringVar(&c.role, "role", "", "the role `NAME` the code is for (default: the default role)")
}

func (c *mfaCmd) validate(args []string) error {
	if len(args) != 1 || args[0] == "" {
		return errors.New("give exactly one code, e.g. imdsd mfa 123456")
	}
	return nil
}

func (c *mfaCmd) Run(ctx context.Context, args []string) error {
	path, err := c.admin.path(c.getenv)
	if err != nil {
		return err
	}
	var answer struct{ Result, Error string }
	status, err := adminCall(ctx, path, "POST", "/mfa"+roleQuery(c.role), strings.NewReader(args[0]), &answer)
	if err != nil {
		return err
	}
	if status == http.StatusNotFound {
		return withCode(exitUsage, errors.New("--role: "+answer.Error))
	}
	if status != http.StatusAccepted {
		return errors.New(answer.Error)
	}
	fmt.Fprintln(c.stdout, answer.Result)
	return nil
}

var reloadSpec = commandSpec{
	name:     "reload",
	synopsis: "reload [--wait DURATION] [--admin-socket PATH] [--config FILE]",
	summary:  "make the running imdsd re-read its configuration",
	help: `Make the running imdsd read its configuration again (as SIGHUP does) and
report the outcome. Listeners that stay keep their sockets and issued
tokens stay valid. A changed source never takes working credentials away:
it starts beside the running one, which serves until the new one has
obtained credentials (or its own credentials expire). reload waits for that
at most --wait, and prints one of:

  applied   the new configuration runs (a changed source has obtained
            credentials and took over)                            exit 0
  pending   the new source failed (the error is shown), or did not answer
            within --wait; the old one keeps serving while it retries,
            and imdsd status shows "pending: new source failing since …".
            It takes over on its first success; another reload replaces
            it                                                    exit 5
  refused   the configuration is invalid (its errors are shown); nothing
            changed                                               exit 1
  replaced  a later reload replaced this one before its source took
            over                                                  exit 1

A new source that took over because the old credentials had expired, but
fails too, is applied with exit 1: no valid credentials are served. As in
every admin command, exit 3 means no imdsd answers at the admin socket and
4 that the socket refuses this user or cannot be trusted.
systemctl reload imdsd runs this; it finds the socket by admin_socket of
the config file too.

Examples:
  sudo imdsd reload
  sudo imdsd reload --wait 2m
  sudo systemctl reload imdsd
`,
	newCmd: func(cio cmdIO) command { return &reloadCmd{cmdIO: cio} },
}

type reloadCmd struct {
	cmdIO
	admin adminTarget
	wait  time.Duration
}

func (c *reloadCmd) flags(fs *flag.FlagSet) {
	c.admin.register(fs)
	fs.DurationVar(&c.wait, "wait", defaultReloadWait, "how long to wait for a changed source to obtain credentials before reporting it pending (0.."+maxReloadWait.String()+")")
}

func (c *reloadCmd) validate(args []string) error {
	var errs []error
	if c.wait < 0 || c.wait > maxReloadWait {
		errs = append(errs, fmt.Errorf("--wait: must be 0..%s (got %s)", maxReloadWait, c.wait))
	}
	return errors.Join(append(errs, takesFlagsOnly("imdsd reload", args))...)
}

func (c *reloadCmd) Run(ctx context.Context, _ []string) error {
	path, err := c.admin.path(c.getenv)
	if err != nil {
		return err
	}
	var a reloadAnswer
	route := "/reload?wait=" + c.wait.String()
	if _, err := adminCallTimeout(ctx, path, "POST", route, nil, &a, c.wait+adminTimeout); err != nil {
		return err
	}
	switch a.Result {
	case reloadApplied:
		if a.Error != "" {
			return fmt.Errorf("applied, but %s:\n%s", a.Message, a.Error)
		}
		fmt.Fprintf(c.stdout, "applied: %s\n", a.Message)
		return nil
	case reloadPending:
		msg := "pending: " + a.Message
		if a.Error != "" {
			msg += ":\n" + a.Error
		}
		return withCode(exitPending, errors.New(msg))
	case reloadRefused:
		return fmt.Errorf("refused; the running configuration stays:\n%s", a.Error)
	case reloadReplaced:
		return fmt.Errorf("replaced: %s", a.Message)
	}
	return fmt.Errorf("read the answer of /reload: unknown result %q", a.Result)
}
