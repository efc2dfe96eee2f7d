package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/user"
	"slices"
	"strconv"
	"strings"

	"github.com/imdsd/imdsd/imds"
	"github.com/imdsd/imdsd/internal/endpoint"
)

// The container credentials endpoint, as the daemon runs it: the roles with
// container: true are served on every container_listen address, each with
// its token file (container_tokens.go). Containers on a bridge network are
// other hosts to imdsd: their networks must be named in allow_clients.

// containerRoles names the roles served to containers.
func (c Config) containerRoles() []string {
	var names []string
	for _, r := range c.roleConfigs() {
		if r.Container {
			names = append(names, r.RoleName)
		}
	}
	return names
}

// validateContainers checks the container endpoint's settings against the
// roles.
func (c Config) validateContainers() error {
	var errs []error
	bad := func(field, rule string, got any) {
		errs = append(errs, fmt.Errorf("%s: %s (got %s)", field, rule, quote(fmt.Sprint(got))))
	}
	roles := c.containerRoles()
	switch {
	case len(c.ContainerListen) == 0 && len(roles) > 0:
		bad("container_listen", "needed by the roles with container: true ("+strings.Join(roles, ", ")+"); e.g. 169.254.170.23:80 or 127.0.0.1:8170", "")
	case len(c.ContainerListen) > 0 && len(roles) == 0:
		errs = append(errs, errors.New("container_listen: no role is served to containers; set container: true on one (--container for the one role)"))
	}
	allowed, _ := c.allowedClients()
	seen := map[string]bool{}
	for _, l := range c.ContainerListen {
		host, err := imds.ParseListen(l)
		switch {
		case err != nil:
			errs = append(errs, errors.New("container_"+err.Error())) // "listen: …"
			continue
		case !strings.HasSuffix(l, ":0") && (seen[l] || slices.Contains(c.Listen, l)):
			bad("container_listen", "each address once, and not one of listen", l)
		}
		seen[l] = true
		a, aerr := netip.ParseAddr(host)
		local := host == "localhost" || (aerr == nil && (a.IsLoopback() || a.Unmap() == endpoint.ContainerV4 || a == endpoint.ContainerV6))
		if !local && len(allowed) == 0 {
			bad("container_listen", "an address that is neither loopback nor "+endpoint.ContainerV4.String()+"/"+endpoint.ContainerV6.String()+
				" serves containers of other networks: name them in allow_clients (e.g. 10.88.0.0/16 for podman, 172.17.0.0/16 for Docker)", l)
		}
	}
	if len(c.ContainerListen) > 0 {
		if c.ContainerTokenDir == "" {
			errs = append(errs, errors.New("container_token_dir: needed: no state directory or home directory to default to; name a directory only root and imdsd can write"))
		}
		if _, err := lookupGroup(c.ContainerTokenGroup); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// lookupGroup is the numeric id of the token group; -1 for "" (imdsd's own
// group).
func lookupGroup(name string) (int, error) {
	if name == "" {
		return -1, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			g, err = user.LookupGroupId(name)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("container_token_group: no such group on this host; create it (groupadd %s) or name another (got %s)", name, quote(name))
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return 0, fmt.Errorf("container_token_group: group %s has a non-numeric id %q", name, g.Gid)
	}
	return gid, nil
}

// tokenStoreOf is where c keeps the container tokens.
func tokenStoreOf(c Config) (tokenStore, error) {
	gid, err := lookupGroup(c.ContainerTokenGroup)
	if err != nil {
		return tokenStore{}, err
	}
	return tokenStore{dir: c.ContainerTokenDir, gid: gid}, nil
}

// exposeContainers gives every role with container: true its token (read
// back from its file, or created) and takes the others off the container
// endpoint. It changes nothing when a token cannot be read or written.
// d.mu must be held, or d not yet serving.
func (d *daemon) exposeContainers(c Config) error {
	exposed := c.containerRoles()
	tokens := map[string]string{}
	if len(exposed) > 0 {
		store, err := tokenStoreOf(c)
		if err != nil {
			return err
		}
		for _, role := range exposed {
			tok, err := store.load(role)
			if err != nil {
				return err
			}
			tokens[role] = tok
		}
	}
	for _, r := range c.roleConfigs() {
		tok, ok := tokens[r.RoleName]
		if !ok {
			d.containers.Remove(r.RoleName)
			continue
		}
		if err := d.containers.SetToken(r.RoleName, tok); err != nil {
			return err
		}
		if s := d.roles[r.RoleName]; s != nil {
			d.containers.Publish(r.RoleName, snapshotOf(s.gen.rot.State()))
		}
	}
	names := c.roleNames()
	for name := range d.roles {
		if !slices.Contains(names, name) {
			d.containers.Remove(name)
		}
	}
	return nil
}

// rotateContainerToken writes a new token for role and serves it at once;
// the old one is refused from then on.
func (d *daemon) rotateContainerToken(role string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !slices.Contains(d.cfg.containerRoles(), role) {
		return "", fmt.Errorf("role %s is not served to containers (roles with container: true: %s)", role, strings.Join(d.cfg.containerRoles(), ", "))
	}
	store, err := tokenStoreOf(d.cfg)
	if err != nil {
		return "", err
	}
	tok, err := store.rotate(role)
	if err != nil {
		return "", err
	}
	if err := d.containers.SetToken(role, tok); err != nil {
		return "", err
	}
	id := imds.ContainerTokenID(tok)
	d.log.Info().Str("role", role).Str("token_id", id).Msg("container token rotated")
	return id, nil
}

// startContainerServer serves the container endpoint on ln; d.mu must be
// held.
func (d *daemon) startContainerServer(addr string, ln net.Listener, errc chan<- error) {
	srv := imds.NewServer(d.containers, d.cfg.MaxConnections, d.log.With().Str("component", "containers").Logger())
	d.cservers[addr] = srv
	d.serveOn(srv, ln, errc)
	d.log.Info().Str("addr", ln.Addr().String()).Strs("roles", d.cfg.containerRoles()).Msg("container endpoint listening")
}
