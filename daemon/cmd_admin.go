package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// The commands that talk to a running imdsd through its admin API.

const statusHelp = `Usage: imdsd status [--json] [--admin-socket PATH]

Show what the running imdsd serves: source, role, expiry of the
credentials (never the secrets), the next refresh and the last error.
Exit status 0 when valid credentials are held, 1 when not, 2 when imdsd
cannot be reached.

Examples:
  sudo imdsd status
  imdsd status --json | jq .credentials.expires_at

Flags:
`

const credsHelp = `Usage: imdsd creds [--format summary|process|env] [--admin-socket PATH]

Print the credentials the running imdsd serves. The default summary shows
no secrets; --format process prints the credential_process JSON, so an AWS
CLI profile can use imdsd too:

  [profile imdsd]
  credential_process = sudo imdsd creds --format process

--format env prints export lines for a shell.

Flags:
`

const mfaHelp = `Usage: imdsd mfa CODE [--admin-socket PATH]

Hand a current MFA code to the running imdsd, which cannot prompt. Needed
when mfa_serial is set without mfa_command: with assume-role about once per
MFA session (36h), with session-token at every refresh.

Example:
  sudo imdsd mfa 123456

Flags:
`

// adminFlags parses the flags shared by the admin commands.
func adminFlags(name, help string, args []string, getenv func(string) string, stderr io.Writer, extra func(*flag.FlagSet)) (path string, rest []string, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, help); fs.PrintDefaults() }
	fs.StringVar(&path, "admin-socket", firstNonEmpty(getenv("IMDSD_ADMIN_SOCKET"), defaultAdminSocket(getenv)), "admin API socket of the running imdsd")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return "", nil, err
	}
	return path, fs.Args(), nil
}

// adminCall does one request and decodes a JSON answer into v (when not
// nil); it returns the status code.
func adminCall(ctx context.Context, path, method, route string, body io.Reader, v any) (int, error) {
	client, base, err := adminClient(path)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, method, base+route, body)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, os.ErrPermission) || strings.Contains(err.Error(), "permission denied") {
			return 0, fmt.Errorf("reach imdsd at %s: permission denied; run as the service user or with sudo", path)
		}
		return 0, fmt.Errorf("reach imdsd at %s: %w", path, err)
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
			return resp.StatusCode, fmt.Errorf("read the answer of %s: %w", route, err)
		}
	}
	return resp.StatusCode, nil
}

func cmdStatus(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var asJSON bool
	path, rest, err := adminFlags("imdsd status", statusHelp, args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print the status document as JSON")
	})
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil || len(rest) > 0 {
		fmt.Fprintf(stderr, "imdsd status: takes flags only\n")
		return exitUsage
	}
	var st statusDoc
	if _, err := adminCall(ctx, path, "GET", "/status", nil, &st); err != nil {
		fmt.Fprintf(stderr, "imdsd status: %v\n", err)
		return exitUsage
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
	} else {
		printStatus(stdout, st, time.Now())
	}
	if !st.Healthy {
		return exitError
	}
	return exitOK
}

func printStatus(w io.Writer, st statusDoc, now time.Time) {
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
	if c := st.Credentials; c != nil {
		fmt.Fprintf(w, "  credentials:  key %s, obtained %s, expire %s (in %s)\n", c.KeyID,
			c.ObtainedAt.Local().Format(time.DateTime), c.ExpiresAt.Local().Format(time.DateTime), c.ExpiresAt.Sub(now).Round(time.Second))
	} else {
		fmt.Fprintf(w, "  credentials:  none yet\n")
	}
	if !st.NextRefresh.IsZero() {
		fmt.Fprintf(w, "  next refresh: %s (in %s)\n", st.NextRefresh.Local().Format(time.DateTime), st.NextRefresh.Sub(now).Round(time.Second))
	}
	if e := st.LastError; e != nil {
		fmt.Fprintf(w, "  last error:   %s (%s, %d failed attempts, last at %s)\n                %s\n",
			e.Code, e.Class, e.Failures, e.At.Local().Format(time.DateTime), strings.ReplaceAll(e.Message, "\n", "\n                "))
	}
}

func cmdCreds(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var format string
	path, rest, err := adminFlags("imdsd creds", credsHelp, args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&format, "format", "summary", "summary (no secrets), process (credential_process JSON) or env")
	})
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil || len(rest) > 0 || (format != "summary" && format != "process" && format != "env") {
		fmt.Fprintf(stderr, "imdsd creds: --format must be summary, process or env\n")
		return exitUsage
	}
	if format == "summary" {
		var st statusDoc
		if _, err := adminCall(ctx, path, "GET", "/status", nil, &st); err != nil {
			fmt.Fprintf(stderr, "imdsd creds: %v\n", err)
			return exitError
		}
		if st.Credentials == nil || !st.Healthy {
			fmt.Fprintf(stderr, "imdsd creds: no valid credentials held; see imdsd status\n")
			return exitError
		}
		fmt.Fprintf(stdout, "role %s, key %s, expires %s\n", firstNonEmpty(st.RoleARN, st.RoleName), st.Credentials.KeyID, st.Credentials.ExpiresAt.UTC().Format(time.RFC3339))
		return exitOK
	}
	var raw json.RawMessage
	code, err := adminCall(ctx, path, "GET", "/credentials", nil, &raw)
	if err != nil {
		fmt.Fprintf(stderr, "imdsd creds: %v\n", err)
		return exitError
	}
	if code != http.StatusOK {
		var e struct{ Error string }
		_ = json.Unmarshal(raw, &e)
		// A credential_process failure: non-zero exit, message on stderr.
		fmt.Fprintf(stderr, "imdsd creds: %s\n", e.Error)
		return exitError
	}
	var pc processCreds
	if err := json.Unmarshal(raw, &pc); err != nil {
		fmt.Fprintf(stderr, "imdsd creds: %v\n", err)
		return exitError
	}
	if format == "process" {
		b, _ := json.Marshal(pc)
		fmt.Fprintf(stdout, "%s\n", b)
		return exitOK
	}
	fmt.Fprintf(stdout, "export AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\n", pc.AccessKeyID, pc.SecretAccessKey)
	if pc.SessionToken != "" {
		fmt.Fprintf(stdout, "export AWS_SESSION_TOKEN=%s\n", pc.SessionToken)
	}
	return exitOK
}

func cmdMFA(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	// The code comes first, as in the usage; flags may follow it.
	var code string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		code, args = args[0], args[1:]
	}
	path, rest, err := adminFlags("imdsd mfa", mfaHelp, args, getenv, stderr, nil)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if code == "" && len(rest) == 1 {
		code, rest = rest[0], nil
	}
	if err != nil || code == "" || len(rest) > 0 {
		fmt.Fprint(stderr, "imdsd mfa: give exactly one code, e.g. imdsd mfa 123456\n")
		return exitUsage
	}
	var answer struct{ Result, Error string }
	status, err := adminCall(ctx, path, "POST", "/mfa", strings.NewReader(code), &answer)
	if err != nil {
		fmt.Fprintf(stderr, "imdsd mfa: %v\n", err)
		return exitError
	}
	if status != http.StatusAccepted {
		fmt.Fprintf(stderr, "imdsd mfa: %s\n", answer.Error)
		return exitError
	}
	fmt.Fprintln(stdout, answer.Result)
	return exitOK
}

const reloadHelp = `Usage: imdsd reload [--admin-socket PATH]

Make the running imdsd read its configuration again (as SIGHUP does) and
wait for the outcome: listeners that stay keep their sockets, issued
tokens stay valid, a changed source takes over after its first fetch. An
invalid configuration is refused with its errors (exit 1) and the running
one stays. systemctl reload imdsd runs this.

Examples:
  sudo imdsd reload
  sudo systemctl reload imdsd

Flags:
`

func cmdReload(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	path, rest, err := adminFlags("imdsd reload", reloadHelp, args, getenv, stderr, nil)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil || len(rest) > 0 {
		fmt.Fprint(stderr, "imdsd reload: takes flags only\n")
		return exitUsage
	}
	var answer struct{ Result, Error string }
	status, err := adminCall(ctx, path, "POST", "/reload", nil, &answer)
	if err != nil {
		fmt.Fprintf(stderr, "imdsd reload: %v\n", err)
		return exitError
	}
	if status != http.StatusOK {
		fmt.Fprintf(stderr, "imdsd reload: refused; the running configuration stays:\n  %s\n", strings.ReplaceAll(answer.Error, "\n", "\n  "))
		return exitError
	}
	fmt.Fprintln(stdout, answer.Result)
	return exitOK
}
