package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/imdsd/imdsd/audit"
)

var auditSpec = commandSpec{
	name:     "audit",
	synopsis: "audit tail [--role NAME] [--user NAME|UID] [-n N] [--config FILE]",
	summary:  "print the audit trail: who got which role, and who was refused",
	help: `Print the last lines of the audit trail (audit_log in the config file)
readably, oldest first: time, listener, role, decision and reason, the
caller (user, uid, pid and executable when the kernel named them, or the
container token ID), the peer address and the last four characters of
the access key served. Never a secret.

Examples:
  sudo imdsd audit tail
  sudo imdsd audit tail --role deploy --user alice -n 50
`,
	newCmd: func(cio cmdIO) command { return &auditCmd{cmdIO: cio} },
}

type auditCmd struct {
	cmdIO
	config string
	role   string
	user   string
	n      int
}

func (c *auditCmd) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.config, configFlag, "", "config file naming audit_log (default "+defaultConfigPath()+" when it exists; env IMDSD_CONFIG)")
	fs.StringVar(&c.role, "role", "", "only the role `NAME`")
	fs.StringVar(&c.user, "user", "", "only the user `NAME` or uid")
	fs.IntVar(&c.n, "n", 20, "how many lines")
}

func (c *auditCmd) validate(args []string) error {
	var errs []error
	if len(args) != 1 || args[0] != "tail" {
		errs = append(errs, errors.New("want tail, e.g. imdsd audit tail --role deploy"))
	}
	if c.n < 1 {
		errs = append(errs, fmt.Errorf("-n: must be 1 or more (got %d)", c.n))
	}
	return errors.Join(errs...)
}

func (c *auditCmd) Run(context.Context, []string) error {
	cfg, path, err := loadConfig(&runFlags{configPath: c.config}, c.getenv)
	if err != nil {
		return withCode(exitUsage, err)
	}
	if cfg.AuditLog == "" {
		if path == "" {
			path = "no config file"
		}
		return withCode(exitUsage, fmt.Errorf("%s sets no audit_log: the trail is off; set audit_log: /var/log/imdsd/audit.log", path))
	}
	f, err := os.Open(cfg.AuditLog)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return withCode(exitPermission, fmt.Errorf("read the audit trail %s: permission denied; run with sudo", cfg.AuditLog))
		}
		return fmt.Errorf("read the audit trail: %w", err)
	}
	defer f.Close()
	recs, bad, err := audit.Last(f, c.n, audit.Filter{Role: c.role, User: c.user})
	if err != nil {
		return fmt.Errorf("read the audit trail %s: %w", cfg.AuditLog, err)
	}
	for _, r := range recs {
		fmt.Fprintln(c.stdout, audit.Format(r))
	}
	if bad > 0 {
		fmt.Fprintf(c.stderr, "imdsd audit: %d lines of %s could not be read and were skipped\n", bad, cfg.AuditLog)
	}
	return nil
}
