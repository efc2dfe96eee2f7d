package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/imdsd/imdsd/imds"
)

// The container commands: container-env prints what a container needs to
// reach a role on the container endpoint; container-token rotates a role's
// token.

// containerMountDir is where container-env's mount puts the role's token
// directory inside the container, unless --mount-dir says otherwise.
const containerMountDir = "/run/imdsd"

var containerEnvSpec = commandSpec{
	name:     "container-env",
	synopsis: "container-env ROLE [--config FILE] [--listen ADDR] [--mount-dir DIR] [--token-value]",
	summary:  "print the --env-file lines and the -v mount a container needs for ROLE",
	help: `Print, for docker run --env-file or podman run --env-file, the variables
that point the AWS SDKs' container credentials provider at ROLE on imdsd's
container endpoint (container_listen; the role has container: true):

  AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.23/roles/ROLE
  AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/run/imdsd/token

and, as a comment, the -v option that mounts the role's token directory
read-only where that file points (the directory, not the file, so that a
rotated token reaches running containers). The SDKs re-read the file at
every refresh.

The token file needs a current SDK: botocore 1.32 / boto3 1.29, AWS CLI
2.15, aws-sdk-go-v2 config 1.25, AWS SDK for JavaScript v3 3.503.1 (Node
default chain), Java v2 2.21.26. Older ones (Debian 12's AWS CLI 2.9 and
botocore 1.29) read only AWS_CONTAINER_AUTHORIZATION_TOKEN, the token
itself: --token-value prints it too (the environment of a container is
visible to whoever can inspect it; prefer the file), and they accept only
127.0.0.1 or localhost in the URI: --listen picks a loopback listener for
containers on the host's network.

Examples:
  imdsd container-env deploy > deploy.env
  podman run --env-file deploy.env \
      -v /var/lib/imdsd/container-tokens/deploy:/run/imdsd:ro IMAGE
  docker run --network host --env-file <(imdsd container-env deploy --listen 127.0.0.1:8170 --token-value) IMAGE
`,
	newCmd: func(cio cmdIO) command { return &containerEnvCmd{cmdIO: cio} },
}

type containerEnvCmd struct {
	cmdIO
	config     string
	listen     string
	mountDir   string
	tokenValue bool
}

func (c *containerEnvCmd) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.config, configFlag, "", "config file (default "+defaultConfigPath()+" when it exists; env IMDSD_CONFIG)")
	fs.StringVar(&c.listen, "listen", "", "the container_listen `ADDR` to point at (default: the first)")
	fs.StringVar(&c.mountDir, "mount-dir", containerMountDir, "where the token directory is mounted in the container")
	fs.BoolVar(&c.tokenValue, "token-value", false, "also print AWS_CONTAINER_AUTHORIZATION_TOKEN, the token itself, for SDKs that do not read the file")
}

func (c *containerEnvCmd) validate(args []string) error {
	var errs []error
	if len(args) != 1 || args[0] == "" {
		errs = append(errs, errors.New("give exactly one role, e.g. imdsd container-env deploy"))
	}
	if !path.IsAbs(c.mountDir) {
		errs = append(errs, fmt.Errorf("--mount-dir: must be an absolute path in the container (got %q)", c.mountDir))
	}
	return errors.Join(errs...)
}

func (c *containerEnvCmd) Run(_ context.Context, args []string) error {
	role := args[0]
	cfg, _, err := loadConfig(&runFlags{configPath: c.config}, c.getenv)
	if err != nil {
		return withCode(exitUsage, err)
	}
	if err := cfg.validateContainers(); err != nil {
		return withCode(exitUsage, fmt.Errorf("the container endpoint is not configured well:\n%w", err))
	}
	exposed := cfg.containerRoles()
	if !slices.Contains(exposed, role) {
		if !slices.Contains(cfg.roleNames(), role) {
			return withCode(exitUsage, fmt.Errorf("no role %q; the roles are %s", role, strings.Join(cfg.roleNames(), ", ")))
		}
		return withCode(exitUsage, fmt.Errorf("role %s is not served to containers: set container: true on it (roles with it: %s)", role, strings.Join(exposed, ", ")))
	}
	addr := c.listen
	switch {
	case addr == "":
		addr = cfg.ContainerListen[0]
	case !slices.Contains(cfg.ContainerListen, addr):
		return withCode(exitUsage, fmt.Errorf("--listen: not one of container_listen (%s) (got %q)", strings.Join(cfg.ContainerListen, ", "), addr))
	}
	tcp, err := resolveListen(addr)
	if err != nil {
		return withCode(exitUsage, err)
	}
	store, err := tokenStoreOf(cfg)
	if err != nil {
		return withCode(exitUsage, err)
	}
	w := c.stdout
	fmt.Fprintf(w, "# imdsd container-env %s: for docker run / podman run --env-file; mount the token directory read-only:\n", role)
	fmt.Fprintf(w, "#   -v %s:%s:ro\n", store.roleDir(role), c.mountDir)
	fmt.Fprintf(w, "AWS_CONTAINER_CREDENTIALS_FULL_URI=%s%s\n", endpointBase(tcp), imds.ContainerPath(role))
	fmt.Fprintf(w, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=%s\n", path.Join(c.mountDir, containerTokenFile))
	if c.tokenValue {
		b, err := os.ReadFile(store.path(role))
		if err != nil {
			return fmt.Errorf("read the token of role %s (is imdsd running? it writes the file; are you root or in container_token_group?): %w", role, err)
		}
		fmt.Fprintf(w, "AWS_CONTAINER_AUTHORIZATION_TOKEN=%s\n", b)
	}
	return nil
}

var containerTokenSpec = commandSpec{
	name:     "container-token",
	synopsis: "container-token rotate ROLE [--admin-socket PATH]",
	summary:  "replace a role's container token, at once and without a restart",
	help: `Replace the container token of ROLE with a new random one: the running imdsd
writes it to the role's token file and refuses the old token from then on.
Containers that read the token file (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE,
with the role's directory mounted) pick the new one up at their next
refresh; those given the token itself need it again (imdsd container-env
--token-value).

Examples:
  sudo imdsd container-token rotate deploy
`,
	newCmd: func(cio cmdIO) command { return &containerTokenCmd{cmdIO: cio} },
}

type containerTokenCmd struct {
	cmdIO
	admin adminTarget
}

func (c *containerTokenCmd) flags(fs *flag.FlagSet) { c.admin.register(fs) }

func (c *containerTokenCmd) validate(args []string) error {
	if len(args) != 2 || args[0] != "rotate" || args[1] == "" {
		return errors.New("want rotate ROLE, e.g. imdsd container-token rotate deploy")
	}
	return nil
}

func (c *containerTokenCmd) Run(ctx context.Context, args []string) error {
	p, err := c.admin.path(c.getenv)
	if err != nil {
		return err
	}
	var answer struct{ Result, Error string }
	status, err := adminCall(ctx, p, "POST", "/container-token"+roleQuery(args[1]), nil, &answer)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return errors.New(answer.Error)
	}
	fmt.Fprintln(c.stdout, answer.Result)
	return nil
}

// resolveListen is a listen address as the address clients dial.
func resolveListen(addr string) (*net.TCPAddr, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("container_listen: must be host:port (got %q)", addr)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("container_listen: must be an IP address and port (got %q)", addr)
	}
	if ap.Port() == 0 {
		return nil, fmt.Errorf("container_listen: %s picks a free port at start, which only imdsd run's output names; give a fixed port", addr)
	}
	return net.TCPAddrFromAddrPort(ap), nil
}
