//go:build linux

package e2e

// A real container: Debian's podman runs an image built here FROM scratch
// holding only e2e/containerclient (aws-sdk-go-v2, static), on podman's
// default bridge network, with --env-file from `imdsd container-env` and the
// role's token directory mounted read-only as that command says. The
// container's default route leads to 169.254.170.23:80, where imdsd serves
// the container endpoint; the SDK's container provider gets the role's
// credentials, exactly as the fake STS issued them.
//
// Where the traffic goes: everything runs inside a network namespace the
// test creates (like netns_test.go): 169.254.170.23 on its lo, imdsd, the
// fake STS (its socket opened in the namespace), and podman itself, so
// podman's bridge, its veth pairs, its firewall rules and the ip_forward
// it sets all live in that namespace and vanish with it. The host's
// interfaces, addresses, routes and firewall are never touched.
//
// Podman's own state is private: a containers.conf of the test's
// (CONTAINERS_CONF: runc as the runtime, cgroupfs, no default ulimits, no
// events, a private network config directory), --root, --runroot and
// --tmpdir in a temporary directory, TMPDIR for build files; so two runs
// at once do not meet. What podman 4.3 keeps at fixed host paths whatever
// the configuration is shared with any other podman of the host, and safe
// to share: its IPAM database /run/containers/networks/ipam.db (an address
// is held only while its container runs) and the blob-info cache
// /var/lib/containers/cache (build metadata).
//
// Why runc and default_ulimits = []: runc is Debian's runtime that make
// deps installs (named, so that a crun installed later is not picked
// instead), and podman 4.3 gives rootful containers RLIMIT_NOFILE
// 1048576 by default, above these hosts' hard limit (20000): runc then
// fails with "error setting rlimits for ready process: … operation not
// permitted". No registry is reachable, so the image is FROM scratch and
// built with --pull=never.
//
// The test needs root and `ip netns add`, and skips (naming the reason)
// without them, or when podman cannot start even a container without a
// network here; a missing podman or runc fails it with the install hint
// (make deps installs them).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imdsd/imdsd/rotator/ststest"
)

// podmanContainerIP is where the SDKs' container provider may reach the
// endpoint over plain http besides loopback (SPEC.md R9.3).
const podmanContainerIP = "169.254.170.23"

// podmanEnv runs podman inside one network namespace with private state.
type podmanEnv struct {
	ns      string
	dir     string // containers.conf, storage, build context, tokens
	nsenter string
	podman  string
	env     []string
	global  []string // podman's global flags
}

func newPodmanEnv(t *testing.T, ns string) *podmanEnv {
	t.Helper()
	hint := "run `make deps` (apt-get install -y podman runc)"
	p := &podmanEnv{
		ns:      ns,
		podman:  firstExecutable(t, hint, "/usr/bin/podman"),
		nsenter: firstExecutable(t, "apt-get install -y util-linux", "/usr/bin/nsenter"),
	}
	runc := firstExecutable(t, hint, "/usr/sbin/runc", "/usr/bin/runc")
	// Short: podman's sockets live under --runroot and --tmpdir.
	dir, err := os.MkdirTemp("", "imdsd-podman-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	t.Cleanup(func() {
		// Runs last: after the images and containers are gone.
		if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && bytes.Contains(b, []byte(dir)) {
			t.Errorf("mounts under %s are left after podman's cleanup:\n%s", dir, grepLines(b, dir))
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove podman's private state: %v", err)
		}
	})
	for _, d := range []string{"home", "tmp", "networks", "root", "run", "libpod"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`# imdsd e2e: podman inside the test's network namespace, private state
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "none"
[engine.runtimes]
runc = [%q]
[network]
network_backend = "netavark"
network_config_dir = %q
`, runc, filepath.Join(dir, "networks"))
	confPath := filepath.Join(dir, "containers.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p.env = []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + filepath.Join(dir, "home"),
		"TMPDIR=" + filepath.Join(dir, "tmp"),
		"CONTAINERS_CONF=" + confPath,
	}
	p.global = []string{
		"--root", filepath.Join(dir, "root"),
		"--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "libpod"),
		"--network-config-dir", filepath.Join(dir, "networks"),
		"--runtime", "runc",
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "none",
	}
	return p
}

func grepLines(b []byte, s string) string {
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// run runs `podman GLOBAL args...` inside the namespace (nsenter --net:
// only the network namespace changes; podman needs the host's mounts, its
// cgroups among them, which `ip netns exec` would replace with a new
// /sys).
func (p *podmanEnv) run(t *testing.T, args ...string) clientRun {
	t.Helper()
	argv := append([]string{"--net=" + filepath.Join("/run/netns", p.ns), "--", p.podman}, p.global...)
	return runClient(t, p.env, p.nsenter, append(argv, args...)...)
}

// cleanup runs `podman GLOBAL args...` from a t.Cleanup function, where
// t.Context() (and so runClient) is already canceled.
func (p *podmanEnv) cleanup(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	argv := append([]string{"--net=" + filepath.Join("/run/netns", p.ns), "--", p.podman}, p.global...)
	cmd := exec.CommandContext(ctx, p.nsenter, append(argv, args...)...)
	cmd.Env = p.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// must is run, failing the test on error.
func (p *podmanEnv) must(t *testing.T, args ...string) []byte {
	t.Helper()
	r := p.run(t, args...)
	if r.Err != nil {
		t.Fatalf("podman %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.Err, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// serveSTSInNetns serves sts on 127.0.0.1 inside namespace ns, where imdsd
// runs, and returns its URL. The socket is opened on a thread that enters
// the namespace for that call only; serving it needs no thread there.
func serveSTSInNetns(t *testing.T, ns string, sts *ststest.Server) string {
	t.Helper()
	return serveSTSInNetnsAt(t, ns, "127.0.0.1:0", sts)
}

// serveSTSInNetnsAt is serveSTSInNetns on addr, an address of namespace ns.
func serveSTSInNetnsAt(t *testing.T, ns, addr string, sts *ststest.Server) string {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// Not unlocked if the thread cannot return to the host's
		// namespace: the runtime then ends the thread with this goroutine.
		ln, err := func() (net.Listener, error) {
			host, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				return nil, err
			}
			defer host.Close()
			target, err := os.Open(filepath.Join("/run/netns", ns))
			if err != nil {
				return nil, err
			}
			defer target.Close()
			if err := setns(target); err != nil {
				return nil, fmt.Errorf("enter %s: %w", ns, err)
			}
			ln, lerr := net.Listen("tcp", addr)
			if err := setns(host); err != nil {
				if ln != nil {
					ln.Close()
				}
				return nil, fmt.Errorf("return to the host's namespace: %w", err)
			}
			runtime.UnlockOSThread()
			return ln, lerr
		}()
		ch <- result{ln, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("listen in namespace %s: %v", ns, r.err)
	}
	srv := &http.Server{Handler: sts, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { _ = srv.Serve(r.ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return "http://" + r.ln.Addr().String()
}

// setns moves the calling thread into the network namespace of f.
func setns(f *os.File) error {
	// The syscall package has no setns(2); its number per architecture
	// (golang.org/x/sys/unix SYS_SETNS).
	nr, ok := map[string]uintptr{"amd64": 308, "arm64": 268, "riscv64": 268, "386": 346, "arm": 375, "ppc64le": 350, "s390x": 339}[runtime.GOARCH]
	if !ok {
		return fmt.Errorf("setns: syscall number unknown on %s", runtime.GOARCH)
	}
	if _, _, e := syscall.RawSyscall(nr, f.Fd(), syscall.CLONE_NEWNET, 0); e != 0 {
		return e
	}
	return nil
}

// podmanClientOut is containerclient's output (-probe).
type podmanClientOut struct {
	AccessKeyID, SecretAccessKey, SessionToken, Source, AccountID string
	CanExpire                                                     bool
	Expires                                                       time.Time
	Probe                                                         *struct {
		MissingToken, WrongToken int
		Addrs                    []string
	}
}

func TestPodmanContainer(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	nt := needNetns(t)
	ns := nt.newNetns(t)
	nt.ipRun(t, "-n", ns, "addr", "add", podmanContainerIP+"/32", "dev", "lo")
	p := newPodmanEnv(t, ns)

	t.Cleanup(func() {
		// Before the private state is removed (cleanups run last-in first-out).
		p.cleanup(t, "rm", "--all", "--force")
		p.cleanup(t, "rmi", "--all", "--force")
	})
	image := p.clientImage(t, fmt.Sprintf("localhost/imdsd-e2e-containerclient:%d", os.Getpid()))
	built := time.Now()

	// Podman's default network, as podman itself reports it.
	var nets []struct {
		Subnets []struct{ Subnet, Gateway string } `json:"subnets"`
	}
	if err := json.Unmarshal(p.must(t, "network", "inspect", "podman"), &nets); err != nil || len(nets) != 1 || len(nets[0].Subnets) == 0 {
		t.Fatalf("podman network inspect podman: %v (%d networks)", err, len(nets))
	}
	subnet, err := netip.ParsePrefix(nets[0].Subnets[0].Subnet)
	if err != nil {
		t.Fatalf("podman's default network: %v", err)
	}
	t.Logf("podman's default network: %s, gateway %s", subnet, nets[0].Subnets[0].Gateway)

	// The fake STS and imdsd, both inside the namespace.
	e := newRolesEnv(t)
	e.stsURL = serveSTSInNetns(t, ns, e.sts) // the one imdsd can reach
	tokenDir := filepath.Join(p.dir, "container-tokens")
	config := func(allow bool) {
		top := []string{
			"container_listen: [" + podmanContainerIP + ":80]",
			"container_token_dir: " + tokenDir,
		}
		if allow {
			top = append(top, "allow_clients: ["+subnet.String()+"]")
		}
		e.writeConfig(t, top, "alpha", e.alphaItem("container: true"), e.betaItem("container: true"))
	}
	config(true)
	d := launchContainerDaemon(t, append([]string{p.nsenter, "--net=" + filepath.Join("/run/netns", ns), "--", binPath(t)},
		"run", "--config", e.config, "--log-format", "json"), e.environ(true), 1)
	e.guardSecrets(t, &d.outputs)
	e.adminSock = d.AdminSock
	if want := "http://" + podmanContainerIP + "/roles/"; d.Containers[0] != want {
		t.Errorf("container endpoint line names %s, want %s (port 80 unnamed, as the SDKs' URIs)", d.Containers[0], want)
	}
	alpha := e.onlyIssued(t, roleAlphaARN, "AssumeRole")
	cs := &containerSetup{rolesEnv: e, tokenDir: tokenDir}
	cs.token(t, &d.outputs, "alpha")
	tokBeta := cs.token(t, &d.outputs, "beta")

	// The env file and the mount, as imdsd container-env prints them.
	r := runClient(t, []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}, binPath(t), "container-env", "alpha", "--config", e.config)
	if r.Err != nil {
		t.Fatalf("imdsd container-env alpha: %v\nstderr:\n%s", r.Err, r.Stderr)
	}
	vars, mount := envVars(t, r.Stdout)
	if want := (map[string]string{
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     "http://" + podmanContainerIP + "/roles/alpha",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/run/imdsd/token",
	}); !equalMaps(vars, want) || mount != filepath.Join(tokenDir, "alpha")+":/run/imdsd:ro" {
		t.Fatalf("imdsd container-env alpha: variables %v, mount %q; want %v and %s:/run/imdsd:ro\n%s", vars, mount, want, filepath.Join(tokenDir, "alpha"), r.Stdout)
	}
	envFile := filepath.Join(p.dir, "alpha.env")
	if err := os.WriteFile(envFile, r.Stdout, 0o600); err != nil {
		t.Fatal(err)
	}

	// The container: default bridge network, the env file, the mount.
	runStart := time.Now()
	out := p.must(t, "run", "--rm", "--env-file", envFile, "--volume", mount, image, "-probe")
	runTook := time.Since(runStart)
	var got podmanClientOut
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("containerclient in the container: output is not JSON: %v\n%s", err, out)
	}
	d.noteSecret(got.SecretAccessKey, "SecretAccessKey (as the container got it)")
	if g := (creds{got.AccessKeyID, got.SecretAccessKey, got.SessionToken, time.Time{}}); g.AccessKeyID != alpha.AccessKeyID ||
		g.SecretAccessKey != alpha.SecretAccessKey || g.SessionToken != alpha.SessionToken {
		t.Errorf("the container's credentials differ from the ones STS issued for alpha: %s", redactedDiff(g, alpha))
	}
	if want := alpha.Expiration.Add(-5 * time.Minute); !got.Expires.Equal(want) || !got.CanExpire {
		t.Errorf("the container's credentials: CanExpire %v, Expires %v; want true, %v (served minus the SDK's 5m window)", got.CanExpire, got.Expires.UTC(), want.UTC())
	}
	if got.Source != "CredentialsEndpointProvider" || got.AccountID != srcRoleAccount {
		t.Errorf("the container's credentials: Source %q, AccountID %q; want CredentialsEndpointProvider, %s", got.Source, got.AccountID, srcRoleAccount)
	}
	var inSubnet string
	if got.Probe != nil {
		for _, a := range got.Probe.Addrs {
			if pfx, err := netip.ParsePrefix(a); err == nil && subnet.Contains(pfx.Addr()) {
				inSubnet = pfx.Addr().String()
			}
		}
	}
	switch {
	case got.Probe == nil:
		t.Errorf("containerclient -probe reported nothing")
	case got.Probe.MissingToken != http.StatusUnauthorized || got.Probe.WrongToken != http.StatusForbidden:
		t.Errorf("from the container: no token %d, wrong token %d; want 401, 403", got.Probe.MissingToken, got.Probe.WrongToken)
	case inSubnet == "":
		t.Errorf("the container's addresses %v, want one in podman's network %s", got.Probe.Addrs, subnet)
	}
	// imdsd saw the container's own address: the wrong-token refusal
	// names it.
	if logs := d.stderr.String(); !strings.Contains(logs, "refused container request with a wrong token") || !strings.Contains(logs, inSubnet+":") {
		t.Errorf("imdsd did not log the refusal of %s:\n%s", inSubnet, logs)
	}

	// Another role's token, given as the value: the SDK fails, nothing
	// served.
	wrongEnv := filepath.Join(p.dir, "wrong.env")
	if err := os.WriteFile(wrongEnv, []byte("AWS_CONTAINER_CREDENTIALS_FULL_URI="+vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"]+"\nAWS_CONTAINER_AUTHORIZATION_TOKEN="+tokBeta+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wr := p.run(t, "run", "--rm", "--env-file", wrongEnv, image)
	var exitErr *exec.ExitError
	if !errors.As(wr.Err, &exitErr) || exitErr.ExitCode() != 1 || !bytes.Contains(wr.Stderr, []byte("AccessDenied")) || bytes.Contains(wr.Stdout, []byte(alpha.SecretAccessKey)) {
		t.Errorf("the container with beta's token for alpha: %v, want exit 1 naming AccessDenied\nstdout:\n%s\nstderr:\n%s", wr.Err, wr.Stdout, wr.Stderr)
	}

	// A second imdsd in the namespace, on another port of the same
	// address, without allow_clients: the container's network is another
	// host's to it, and it refuses the container (403) with the right
	// token.
	t.Run("network-not-allowed", func(t *testing.T) {
		e2 := newRolesEnv(t)
		e2.stsURL = e.stsURL
		e2.sts = e.sts
		tokenDir2 := filepath.Join(p.dir, "container-tokens-2")
		e2.writeConfig(t, []string{"container_listen: [" + podmanContainerIP + ":8080]", "container_token_dir: " + tokenDir2},
			"alpha", e2.alphaItem("container: true"))
		d2 := launchContainerDaemon(t, append([]string{p.nsenter, "--net=" + filepath.Join("/run/netns", ns), "--", binPath(t)},
			"run", "--config", e2.config, "--log-format", "json"), e2.environ(true), 1)
		e2.guardSecrets(t, &d2.outputs)
		env2 := filepath.Join(p.dir, "alpha-2.env")
		r := runClient(t, []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}, binPath(t), "container-env", "alpha", "--config", e2.config)
		if r.Err != nil {
			t.Fatalf("imdsd container-env alpha (second imdsd): %v\nstderr:\n%s", r.Err, r.Stderr)
		}
		_, mount2 := envVars(t, r.Stdout)
		if err := os.WriteFile(env2, r.Stdout, 0o600); err != nil {
			t.Fatal(err)
		}
		nr := p.run(t, "run", "--rm", "--env-file", env2, "--volume", mount2, image)
		if !errors.As(nr.Err, &exitErr) || !bytes.Contains(nr.Stderr, []byte("Clients of this network are not served")) || len(nr.Stdout) > 0 {
			t.Errorf("the container, its network not in allow_clients: %v, want exit 1 naming the refusal (stdout %d bytes)\nstderr:\n%s", nr.Err, len(nr.Stdout), nr.Stderr)
		}
	})

	// allow_clients removed by a reload: the running imdsd must refuse the
	// container's network from then on, as it does the IMDS listeners'.
	t.Run("allow-clients-reload", func(t *testing.T) {
		config(false)
		reloadApplied(t, e.adminSock)
		nr := p.run(t, "run", "--rm", "--env-file", envFile, "--volume", mount, image)
		if !errors.As(nr.Err, &exitErr) || len(nr.Stdout) > 0 {
			t.Errorf("the container after a reload removed allow_clients: %v (stdout %d bytes: got credentials), want refused like another host's\nstderr:\n%s", nr.Err, len(nr.Stdout), nr.Stderr)
		}
	})

	t.Logf("image built and a first container run in %v, the real run in %v; whole test %v",
		built.Sub(begin).Round(time.Millisecond), runTook.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// clientImage builds the client image, FROM scratch with the static
// client and nothing else, tagged tag, and checks that this host can start
// a container at all: without a network and mounts, containerclient -h
// prints its usage and exits 2. Anything else (podman's own 125..127, an
// OCI runtime error) means no container runtime can start here: the test
// is skipped, saying exactly why.
func (p *podmanEnv) clientImage(t *testing.T, tag string) string {
	t.Helper()
	ctxDir := filepath.Join(p.dir, "context-"+strings.NewReplacer("/", "-", ":", "-").Replace(tag))
	if err := os.Mkdir(ctxDir, 0o755); err != nil {
		t.Fatal(err)
	}
	buildContainerClient(t, ctxDir)
	containerfile := "FROM scratch\nCOPY containerclient /containerclient\nENTRYPOINT [\"/containerclient\"]\n"
	if err := os.WriteFile(filepath.Join(ctxDir, "Containerfile"), []byte(containerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	p.must(t, "build", "--pull=never", "--quiet", "--tag", tag, ctxDir)
	if r := p.run(t, "run", "--rm", "--network", "none", tag, "-h"); !bytes.Contains(r.Stderr, []byte("Usage of /containerclient")) {
		t.Skipf("SKIPPED LOUDLY: podman cannot start a container on this host (runc, cgroupfs, no network): %v\nstdout:\n%s\nstderr:\n%s",
			r.Err, r.Stdout, r.Stderr)
	}
	return tag
}
