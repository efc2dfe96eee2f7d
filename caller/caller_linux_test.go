package caller_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imdsd/imdsd/caller"
	"golang.org/x/sys/unix"
)

func newSystem(t testing.TB) *caller.System {
	t.Helper()
	s, err := caller.NewSystem(caller.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// connect opens a loopback connection: a listener on listen, a client
// dialling dial (the listener's port appended), and returns the client
// and the accepted (server) end.
func connect(t testing.TB, listenNet, listen, dialNet, dial string) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen(listenNet, listen)
	if err != nil {
		t.Skipf("listen %s %s: %v", listenNet, listen, err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	var c net.Conn
	if dialNet == "raw6" {
		c, err = dialInet6(netip.MustParseAddr(dial), port)
	} else {
		c, err = net.Dial(dialNet, net.JoinHostPort(dial, fmt.Sprint(port)))
	}
	if err != nil {
		t.Skipf("dial %s %s: %v", dialNet, dial, err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

func addrs(c net.Conn) (local, remote netip.AddrPort) {
	return c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()
}

// The four shapes of a same-host connection: IPv4, IPv6, and an IPv4
// client of a dual-stack listener (the server sees ::ffff:127.0.0.1),
// from an AF_INET socket or from an AF_INET6 one dialling the mapped
// address.
var shapes = []struct {
	name                             string
	listenNet, listen, dialNet, dial string
}{
	{"ipv4", "tcp4", "127.0.0.1:0", "tcp4", "127.0.0.1"},
	{"ipv6", "tcp6", "[::1]:0", "tcp6", "::1"},
	{"ipv4 client of dual-stack listener", "tcp", "[::]:0", "tcp4", "127.0.0.1"},
	{"ipv4-mapped client of dual-stack listener", "tcp", "[::]:0", "raw6", "::ffff:127.0.0.1"},
}

// dialInet6 connects an AF_INET6 socket to addr, which may be IPv4-mapped
// (Go's dialer makes an AF_INET socket for those).
func dialInet6(addr netip.Addr, port int) (net.Conn, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "inet6")
	defer f.Close()
	if err := unix.Connect(fd, &unix.SockaddrInet6{Addr: addr.As16(), Port: port}); err != nil {
		return nil, err
	}
	return net.FileConn(f)
}

func TestLookupSameUser(t *testing.T) {
	sys := newSystem(t)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe, _ = filepath.EvalSymlinks(exe)
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			_, server := connect(t, sh.listenNet, sh.listen, sh.dialNet, sh.dial)
			id := caller.LookupConn(sys, server)
			if !id.Known || id.Err != nil {
				t.Fatalf("Lookup(%v, %v) = %+v, want a known caller", server.LocalAddr(), server.RemoteAddr(), id)
			}
			if id.UID != os.Getuid() || id.User != me.Username || id.Inode == 0 {
				t.Errorf("Lookup() = uid %d user %q inode %d, want uid %d user %q and an inode", id.UID, id.User, id.Inode, os.Getuid(), me.Username)
			}
			if id.PID != 0 || id.Exe != "" {
				t.Errorf("Lookup() found process %d %q: the process is for FindProcess", id.PID, id.Exe)
			}
			full, err := sys.FindProcess(id)
			if err != nil {
				t.Fatalf("FindProcess() error = %v", err)
			}
			if full.PID != os.Getpid() || full.Exe != exe {
				t.Errorf("FindProcess() = pid %d exe %q, want %d %q", full.PID, full.Exe, os.Getpid(), exe)
			}
			if want := ownCgroup(t, os.Getpid()); full.Cgroup != want {
				t.Errorf("FindProcess() cgroup = %q, want %q", full.Cgroup, want)
			}
		})
	}
}

// ownCgroup reads the cgroup v2 path of pid the plain way.
func ownCgroup(t testing.TB, pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p
		}
	}
	return ""
}

func TestLookupClosedPeer(t *testing.T) {
	sys := newSystem(t)
	client, server := connect(t, "tcp4", "127.0.0.1:0", "tcp4", "127.0.0.1")
	client.Close()
	id := caller.LookupConn(sys, server)
	// The closed client socket is orphaned (FIN_WAIT2) or gone: either
	// way it has no owner, and never reads as uid 0.
	if id.Known || id.UID != -1 || !(errors.Is(id.Err, caller.ErrPeerClosed) || errors.Is(id.Err, caller.ErrNoSocket)) {
		t.Errorf("Lookup() of a closed peer = %+v, want unknown with ErrPeerClosed or ErrNoSocket", id)
	}
}

// A peer of another network namespace (a container on a bridge) is no
// socket of ours: the kernel finds nothing for its four-tuple. 192.0.2.0/24
// is TEST-NET-1; nothing is sent, the kernel's table is only asked.
func TestLookupNoSocket(t *testing.T) {
	sys := newSystem(t)
	id, err := sys.Lookup(netip.MustParseAddrPort("127.0.0.1:80"), netip.MustParseAddrPort("192.0.2.7:40000"))
	if !errors.Is(err, caller.ErrNoSocket) || id.Known || id.UID != -1 {
		t.Errorf("Lookup() = %+v, %v; want unknown, ErrNoSocket", id, err)
	}
}

// When no connected socket matches, the kernel's exact lookup returns a
// listener bound to the requested address if there is one: after a peer
// went away, another process may listen on its old port. That listener's
// owner must not be taken for the caller.
func TestLookupIgnoresListener(t *testing.T) {
	sys := newSystem(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	lp := l.Addr().(*net.TCPAddr).AddrPort()
	_, err = sys.Lookup(netip.MustParseAddrPort("127.0.0.1:1"), lp)
	if !errors.Is(err, caller.ErrNoSocket) {
		t.Errorf("Lookup() with a listener on the peer's address: error = %v, want ErrNoSocket", err)
	}
}

func TestLookupInvalid(t *testing.T) {
	sys := newSystem(t)
	if id, err := sys.Lookup(netip.AddrPort{}, netip.MustParseAddrPort("127.0.0.1:1")); err == nil || id.Known {
		t.Errorf("Lookup(invalid) = %+v, %v; want an error", id, err)
	}
}

func TestLookupAfterClose(t *testing.T) {
	sys := newSystem(t)
	_, server := connect(t, "tcp4", "127.0.0.1:0", "tcp4", "127.0.0.1")
	_ = sys.Close()
	if id := caller.LookupConn(sys, server); !id.Known {
		t.Errorf("Lookup() after Close = %+v, want the socket reopened", id)
	}
}

func TestPeerWithProcess(t *testing.T) {
	sys := newSystem(t)
	_, server := connect(t, "tcp4", "127.0.0.1:0", "tcp4", "127.0.0.1")
	ctx := caller.ConnContext(sys)(t.Context(), server)
	p := caller.FromContext(ctx)
	if p == nil {
		t.Fatal("FromContext() = nil after ConnContext")
	}
	if id := p.Identity(); !id.Known || id.PID != 0 {
		t.Fatalf("Identity() = %+v, want known without a process", id)
	}
	if id := p.WithProcess(); id.PID != os.Getpid() {
		t.Errorf("WithProcess() pid = %d, want %d", id.PID, os.Getpid())
	}
	if id := p.Identity(); id.PID != os.Getpid() {
		t.Errorf("Identity() after WithProcess pid = %d, want %d", id.PID, os.Getpid())
	}
}

// asUser starts, as uid and gid 4321 (setpriv), a bash that connects to
// addr and holds the connection until its stdin closes. It returns the
// accepted end and the process.
func asUser(t *testing.T, l net.Listener) (net.Conn, *exec.Cmd) {
	t.Helper()
	a := l.Addr().(*net.TCPAddr)
	cmd := exec.Command("setpriv", "--reuid=4321", "--regid=4321", "--clear-groups",
		"bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d && echo connected && read -r _", a.IP, a.Port))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start setpriv: %v", err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "connected\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	go io.Copy(io.Discard, stdout) //nolint:errcheck // drained until the helper exits
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, cmd
}

// The kernel names a caller of another user, and /proc its process, for
// IPv4 and IPv6. Needs root: setpriv to another uid, and /proc of another
// user's process.
func TestLookupOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: starts a process as uid 4321 (setpriv) and reads its /proc entries")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("needs bash")
	}
	bash, _ = filepath.EvalSymlinks(bash)
	sys := newSystem(t)
	for _, tc := range []struct{ name, network, addr string }{
		{"ipv4", "tcp4", "127.0.0.1:0"},
		{"ipv6", "tcp6", "[::1]:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen(tc.network, tc.addr)
			if err != nil {
				t.Skipf("listen: %v", err)
			}
			defer l.Close()
			server, cmd := asUser(t, l)
			peer := caller.NewPeer(caller.LookupConn(sys, server), sys)
			id := peer.Identity()
			if !id.Known || id.UID != 4321 {
				t.Fatalf("Lookup() = %+v, want uid 4321", id)
			}
			id = peer.WithProcess()
			if id.PID != cmd.Process.Pid || id.Exe != bash || id.Err != nil {
				t.Errorf("WithProcess() = pid %d exe %q err %v, want %d %q", id.PID, id.Exe, id.Err, cmd.Process.Pid, bash)
			}
			if want := ownCgroup(t, cmd.Process.Pid); id.Cgroup != want {
				t.Errorf("WithProcess() cgroup = %q, want %q", id.Cgroup, want)
			}

			env := caller.Env{Support: caller.Supported}
			for _, c := range []struct {
				allow caller.Allow
				want  bool
			}{
				{caller.Allow{Users: []string{"4321"}, Executables: []string{bash}}, true},
				{caller.Allow{Users: []string{"0"}}, false},
				{caller.Allow{Users: []string{"4321"}, Executables: []string{"/usr/bin/env"}}, false},
			} {
				p, _, err := caller.Compile("r", &c.allow, env)
				if err != nil {
					t.Fatal(err)
				}
				if got := caller.Decide(p, id); got.Allow != c.want {
					t.Errorf("Decide(%+v) = %+v, want allow %v", c.allow, got, c.want)
				}
			}
		})
	}
}

// A process that exited leaves no process to find.
func TestFindProcessGone(t *testing.T) {
	sys := newSystem(t)
	id := caller.Identity{Known: true, UID: os.Getuid(), Inode: 1<<32 - 2}
	got, err := sys.FindProcess(id)
	if !errors.Is(err, caller.ErrNoProcess) || got.PID != 0 || !errors.Is(got.Err, caller.ErrNoProcess) {
		t.Errorf("FindProcess(no such socket) = %+v, %v; want ErrNoProcess", got, err)
	}
}

func BenchmarkLookup(b *testing.B) {
	sys := newSystem(b)
	for _, sh := range shapes[:3] {
		b.Run(sh.name, func(b *testing.B) {
			_, server := connect(b, sh.listenNet, sh.listen, sh.dialNet, sh.dial)
			local, remote := addrs(server)
			benchMedian(b, func() {
				if _, err := sys.Lookup(local, remote); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkLookupNewConnection times the lookup of a new connection
// (p50-ns, p99-ns: the lookup alone; ns/op also counts the connect).
func BenchmarkLookupNewConnection(b *testing.B) {
	sys := newSystem(b)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var d []time.Duration
	for b.Loop() {
		c, err := net.Dial("tcp4", l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s, err := l.Accept()
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		id := caller.LookupConn(sys, s)
		d = append(d, time.Since(t0))
		if !id.Known {
			b.Fatal(id.Err)
		}
		c.Close()
		s.Close()
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(d[len(d)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkFindProcess: the process search when the caller's process held
// one of its uid's recent connections (a long-running client), and when
// it did not (a new CLI process: a walk of /proc).
func BenchmarkFindProcess(b *testing.B) {
	sys := newSystem(b)
	_, server := connect(b, "tcp4", "127.0.0.1:0", "tcp4", "127.0.0.1")
	id := caller.LookupConn(sys, server)
	b.Run("recent process", func(b *testing.B) {
		benchMedian(b, func() {
			if _, err := sys.FindProcess(id); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// benchMedian runs f in b.Loop and reports the median and 99th
// percentile as well as the mean that ns/op is.
func benchMedian(b *testing.B, f func()) {
	b.Helper()
	var d []time.Duration
	for b.Loop() {
		t0 := time.Now()
		f()
		d = append(d, time.Since(t0))
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(d[len(d)*99/100].Nanoseconds()), "p99-ns")
}
