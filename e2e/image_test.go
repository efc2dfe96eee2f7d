//go:build linux

package e2e

// The imdsd image (image/, make image) as a sidecar: image/build.sh builds
// it into podman's private storage, podman runs it on a user-defined
// network whose subnet holds the container endpoint's address
// (169.254.170.0/24, imdsd at --ip 169.254.170.23), as the README's
// compose example does, and a second container on that network, holding
// only e2e/containerclient (aws-sdk-go-v2's default chain), gets the fake
// STS's credentials with nothing but what a user would give it:
//
//   - over IMDS, AWS_EC2_METADATA_SERVICE_ENDPOINT naming imdsd by its
//     address, and by the name "imdsd" (accepted by allowed_hosts); another
//     name of the same address, not in allowed_hosts, is refused (the
//     DNS-rebinding guard);
//   - over the container endpoint, AWS_CONTAINER_CREDENTIALS_FULL_URI at
//     http://169.254.170.23/roles/alpha and the token file imdsd wrote into
//     a named volume, mounted read-only, read as another user of imdsd's
//     group.
//
// imdsd takes its configuration the three ways the README shows: the config
// file mounted at /etc/imdsd/config.yaml (the default path), the base
// credentials as IMDSD_* variables from an env file, and a flag after the
// image name. The image's metadata (labels, user, entrypoint) and its
// whole file list are checked too.
//
// Where the traffic goes: as in podman_test.go, podman runs inside a
// network namespace the test creates, so the network's bridge
// (169.254.170.1), its firewall rules and podman's DNS live there. The fake
// STS listens on 192.0.2.10 (TEST-NET-1), an address of that namespace's
// lo, which imdsd's container reaches through its default route to the
// bridge. Nothing is added to the host's interfaces.

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	imageSubnet  = "169.254.170.0/24"
	imageSTSAddr = "192.0.2.10"
)

func TestImage(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	nt := needNetns(t)
	ns := nt.newNetns(t)
	nt.ipRun(t, "-n", ns, "addr", "add", imageSTSAddr+"/32", "dev", "lo")
	p := newPodmanEnv(t, ns)
	t.Cleanup(func() {
		// Before the private state is removed (cleanups run last-in first-out).
		p.cleanup(t, "rm", "--all", "--force", "--time", "2")
		p.cleanup(t, "volume", "prune", "--force")
		p.cleanup(t, "rmi", "--all", "--force")
	})

	// The image, by the script make image runs.
	repo := "localhost/imdsd-e2e"
	version := fmt.Sprintf("e2e-%d", os.Getpid())
	const revision, created = "0123456789abcdef0123456789abcdef01234567", "2026-11-22T10:00:00Z"
	script, err := filepath.Abs(filepath.Join("..", "image", "build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	build := runClient(t, append(slices.Clone(p.env), "IMDSD_BINARY="+binPath(t), "IMAGE="+repo,
		"VERSION="+version, "REVISION="+revision, "CREATED="+created, "PODMAN="+p.podman), script, p.global...)
	if build.Err != nil {
		t.Fatalf("image/build.sh: %v\nstdout:\n%s\nstderr:\n%s", build.Err, build.Stdout, build.Stderr)
	}
	image := repo + ":" + version
	built := time.Now()

	// The client image: FROM scratch, the static client only.
	client := p.clientImage(t, "localhost/imdsd-e2e-client:"+version)

	t.Run("metadata", func(t *testing.T) { checkImageMetadata(t, p, image, version, revision, created) })
	t.Run("files", func(t *testing.T) { checkImageFiles(t, p, image) })
	if t.Failed() {
		return
	}

	// The fake STS, in the namespace; the network, the token volume.
	e := newRolesEnv(t)
	stsURL := serveSTSInNetnsAt(t, ns, imageSTSAddr+":0", e.sts)
	network := "imdsd-e2e"
	// --disable-dns: podman 4.3 keeps aardvark-dns's state at a fixed host
	// path (/run/containers/networks/aardvark-dns) and reuses a server
	// already running, which may live in another namespace (another
	// podman's, another test's); the clients get imdsd's names from
	// --add-host instead, which sends the same Host header a compose
	// service name does.
	p.must(t, "network", "create", "--disable-dns", "--subnet", imageSubnet, "--gateway", "169.254.170.1", network)
	p.must(t, "volume", "create", "imdsd-tokens")

	// The config file (no secret: readable by the image's user), the base
	// credentials in an env file (never on a command line).
	cfg := filepath.Join(p.dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(strings.Join([]string{
		"source: assume-role",
		"role_arn: " + roleAlphaARN,
		"role_name: alpha",
		"region: " + rolesRegion,
		"sts_endpoint: " + stsURL,
		"sts_region: us-east-1",
		"container: true",
		"container_listen: [" + podmanContainerIP + ":80]",
		"allow_clients: [" + imageSubnet + "]",
		"allowed_hosts: [imdsd]",
		"log_format: json",
	}, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(p.dir, "imdsd.env")
	if err := os.WriteFile(envFile, []byte("IMDSD_ACCESS_KEY_ID="+srcBaseAKID+"\nIMDSD_SECRET_ACCESS_KEY="+srcBaseSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.must(t, "run", "--detach", "--name", "imdsd", "--network", network, "--ip", podmanContainerIP,
		"--sysctl", "net.ipv4.ip_unprivileged_port_start=80",
		"--env-file", envFile,
		"--volume", cfg+":/etc/imdsd/config.yaml:ro",
		"--volume", "imdsd-tokens:/var/lib/imdsd/container-tokens",
		image, "--listen", podmanContainerIP+":8169")
	logs := waitImageReady(t, p)
	started := time.Now()
	alpha := e.onlyIssued(t, roleAlphaARN, "AssumeRole")
	// The logs carry no secret: the base secret nor anything STS issued.
	t.Cleanup(func() {
		logs := p.run(t, "logs", "imdsd")
		for _, s := range []string{srcBaseSecret, alpha.SecretAccessKey, alpha.SessionToken} {
			if bytes.Contains(logs.Stdout, []byte(s)) || bytes.Contains(logs.Stderr, []byte(s)) {
				t.Errorf("imdsd's logs hold a secret (%d bytes)", len(s))
			}
		}
	})
	for _, want := range []string{`"addr":"` + podmanContainerIP + `:8169"`, `"message":"container endpoint listening"`, `"role":"alpha"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("imdsd's log lacks %s:\n%s", want, logs)
		}
	}

	// imdsd's own commands work in the running container (podman exec):
	// status, through the admin socket in RUNTIME_DIRECTORY; container-env,
	// from the mounted config file.
	if r := p.run(t, "exec", "imdsd", "/imdsd", "status"); r.Err != nil || !bytes.Contains(r.Stdout, []byte("serving valid credentials")) {
		t.Errorf("podman exec imdsd /imdsd status: %v, want exit 0 and valid credentials\nstdout:\n%s\nstderr:\n%s", r.Err, r.Stdout, r.Stderr)
	}
	if r := p.run(t, "exec", "imdsd", "/imdsd", "container-env", "alpha"); r.Err != nil ||
		!bytes.Contains(r.Stdout, []byte("AWS_CONTAINER_CREDENTIALS_FULL_URI=http://"+podmanContainerIP+"/roles/alpha\n")) {
		t.Errorf("podman exec imdsd /imdsd container-env alpha: %v\nstdout:\n%s\nstderr:\n%s", r.Err, r.Stdout, r.Stderr)
	}

	// The clients: only the variables a user sets.
	runInNet := func(t *testing.T, args ...string) (podmanClientOut, clientRun) {
		t.Helper()
		r := p.run(t, append([]string{"run", "--rm", "--network", network,
			"--add-host", "imdsd:" + podmanContainerIP, "--add-host", "imdsd-alias:" + podmanContainerIP}, args...)...)
		var got podmanClientOut
		if r.Err == nil {
			if err := json.Unmarshal(r.Stdout, &got); err != nil {
				t.Fatalf("containerclient: output is not JSON: %v\n%s", err, r.Stdout)
			}
		}
		return got, r
	}
	wantCreds := func(t *testing.T, got podmanClientOut, r clientRun, source string) {
		t.Helper()
		if r.Err != nil {
			t.Fatalf("containerclient: %v\nstderr:\n%s", r.Err, r.Stderr)
		}
		if g := (creds{got.AccessKeyID, got.SecretAccessKey, got.SessionToken, time.Time{}}); g.AccessKeyID != alpha.AccessKeyID ||
			g.SecretAccessKey != alpha.SecretAccessKey || g.SessionToken != alpha.SessionToken {
			t.Errorf("the client's credentials differ from the ones STS issued: %s", redactedDiff(g, alpha))
		}
		if got.Source != source || !got.CanExpire {
			t.Errorf("the client's credentials: Source %q, CanExpire %v; want %s, true", got.Source, got.CanExpire, source)
		}
	}
	for _, tc := range []struct{ name, endpoint string }{
		{"imds-by-address", "http://" + podmanContainerIP + ":8169/"},
		{"imds-by-name", "http://imdsd:8169/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, r := runInNet(t, "--env", "AWS_EC2_METADATA_SERVICE_ENDPOINT="+tc.endpoint, "--env", "AWS_EC2_METADATA_V1_DISABLED=true", client)
			wantCreds(t, got, r, "EC2RoleProvider")
		})
	}
	t.Run("imds-name-not-allowed", func(t *testing.T) {
		_, r := runInNet(t, "--env", "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://imdsd-alias:8169/", "--env", "AWS_EC2_METADATA_V1_DISABLED=true", client)
		if r.Err == nil || len(r.Stdout) > 0 || !bytes.Contains(r.Stderr, []byte("403")) {
			t.Errorf("the client naming imdsd by a name not in allowed_hosts: %v, want refused (403)\nstdout %d bytes\nstderr:\n%s", r.Err, len(r.Stdout), r.Stderr)
		}
	})
	// An application user that is not root, in imdsd's group (65532),
	// which may read the token file (0640).
	containerClient := []string{"--user", "1000:1000", "--group-add", "65532",
		"--env", "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://" + podmanContainerIP + "/roles/alpha",
		"--env", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/run/imdsd/alpha/token",
		"--volume", "imdsd-tokens:/run/imdsd:ro", client}
	t.Run("container-endpoint", func(t *testing.T) {
		got, r := runInNet(t, containerClient...)
		wantCreds(t, got, r, "CredentialsEndpointProvider")
	})
	// A rotated token reaches the volume, and the next client with it.
	t.Run("container-token-rotate", func(t *testing.T) {
		if r := p.run(t, "exec", "imdsd", "/imdsd", "container-token", "rotate", "alpha"); r.Err != nil {
			t.Fatalf("podman exec imdsd /imdsd container-token rotate alpha: %v\nstdout:\n%s\nstderr:\n%s", r.Err, r.Stdout, r.Stderr)
		}
		got, r := runInNet(t, containerClient...)
		wantCreds(t, got, r, "CredentialsEndpointProvider")
	})
	t.Logf("image built in %v, imdsd serving %v later; whole test %v",
		built.Sub(begin).Round(time.Millisecond), started.Sub(built).Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
}

// waitImageReady waits, at most 30 s, until imdsd in container "imdsd"
// serves both endpoints with credentials, and returns its log.
func waitImageReady(t *testing.T, p *podmanEnv) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := p.run(t, "logs", "imdsd")
		logs := string(r.Stdout) + string(r.Stderr)
		if strings.Contains(logs, `"message":"credentials refreshed"`) && strings.Contains(logs, `"message":"container endpoint listening"`) {
			return logs
		}
		st := p.run(t, "inspect", "--format", "{{.State.Status}}", "imdsd")
		if s := strings.TrimSpace(string(st.Stdout)); s != "running" || time.Now().After(deadline) {
			t.Fatalf("imdsd's container is %s and not serving (waited at most 30s); its log:\n%s", s, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkImageMetadata: what podman image inspect shows.
func checkImageMetadata(t *testing.T, p *podmanEnv, image, version, revision, created string) {
	var inspect []struct {
		Config struct {
			User       string
			Entrypoint []string
			Cmd        []string
			Env        []string
			Labels     map[string]string
		}
		Architecture, Os string
	}
	if err := json.Unmarshal(p.must(t, "image", "inspect", image), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("podman image inspect %s: %v (%d images)", image, err, len(inspect))
	}
	c := inspect[0].Config
	if c.User != "65532:65532" {
		t.Errorf("User = %q, want 65532:65532 (imdsd, not root)", c.User)
	}
	if want := []string{"/imdsd", "run"}; !slices.Equal(c.Entrypoint, want) || len(c.Cmd) != 0 {
		t.Errorf("Entrypoint %q, Cmd %q; want %q and none", c.Entrypoint, c.Cmd, want)
	}
	for _, v := range c.Env {
		if strings.HasPrefix(v, "IMDSD_") || strings.HasPrefix(v, "AWS_") {
			t.Errorf("the image sets %s: it would override the mounted config file (flag > env > file)", v)
		}
	}
	for _, want := range []string{"RUNTIME_DIRECTORY=/run/imdsd", "STATE_DIRECTORY=/var/lib/imdsd"} {
		if !slices.Contains(c.Env, want) {
			t.Errorf("Env %q lacks %s", c.Env, want)
		}
	}
	labels := map[string]string{}
	for k, v := range c.Labels {
		if strings.HasPrefix(k, "org.opencontainers.image.") {
			labels[strings.TrimPrefix(k, "org.opencontainers.image.")] = v
		}
	}
	want := map[string]string{
		"title":         "imdsd",
		"description":   "The EC2 instance metadata service and the container credentials endpoint, serving AWS credentials from STS to unmodified SDKs",
		"version":       version,
		"revision":      revision,
		"created":       created,
		"source":        "https://github.com/imdsd/imdsd",
		"documentation": "https://github.com/imdsd/imdsd#container-image",
		"licenses":      "Apache-2.0",
	}
	if diff := cmp.Diff(want, labels); diff != "" {
		t.Errorf("OCI labels (-want +got):\n%s", diff)
	}
	// The static binary runs in the image as its user, with nothing else
	// there (no libc, no loader).
	r := p.run(t, "run", "--rm", "--network", "none", "--entrypoint", "/imdsd", image, "version")
	if r.Err != nil || !bytes.HasPrefix(r.Stdout, []byte("imdsd ")) {
		t.Errorf("imdsd version in the image: %v\nstdout:\n%s\nstderr:\n%s", r.Err, r.Stdout, r.Stderr)
	}
}

// checkImageFiles: the image holds these files, owners and modes, and
// nothing else.
func checkImageFiles(t *testing.T, p *podmanEnv, image string) {
	id := strings.TrimSpace(string(p.must(t, "create", "--network", "none", image)))
	defer p.run(t, "rm", "--force", id)
	exp := p.run(t, "export", id)
	if exp.Err != nil {
		t.Fatalf("podman export: %v\n%s", exp.Err, exp.Stderr)
	}
	var got []string
	tr := tar.NewReader(bytes.NewReader(exp.Stdout))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("podman export: %v", err)
		}
		got = append(got, fmt.Sprintf("%s %04o %d:%d", strings.TrimPrefix(h.Name, "./"), h.Mode&0o7777, h.Uid, h.Gid))
	}
	slices.Sort(got)
	want := []string{
		"etc/ 0755 0:0",
		"etc/group 0644 0:0",
		"etc/passwd 0644 0:0",
		"etc/ssl/ 0755 0:0",
		"etc/ssl/certs/ 0755 0:0",
		"etc/ssl/certs/ca-certificates.crt 0644 0:0",
		"imdsd 0755 0:0",
		"run/ 0755 0:0",
		"run/imdsd/ 0700 65532:65532",
		"var/ 0755 0:0",
		"var/lib/ 0755 0:0",
		"var/lib/imdsd/ 0700 65532:65532",
		"var/lib/imdsd/container-tokens/ 0750 65532:65532",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the image's files (-want +got):\n%s", diff)
	}
	// The CA bundle is the host's, where Go's crypto/x509 looks first on
	// Linux.
	host, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("the host's CA bundle: %v", err)
	}
	tr = tar.NewReader(bytes.NewReader(exp.Stdout))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Errorf("no CA bundle in the image: %v", err)
			return
		}
		if strings.TrimPrefix(h.Name, "./") == "etc/ssl/certs/ca-certificates.crt" {
			b, _ := io.ReadAll(tr)
			if !bytes.Equal(b, host) {
				t.Errorf("the image's CA bundle (%d bytes) differs from the host's (%d bytes)", len(b), len(host))
			}
			return
		}
	}
}
