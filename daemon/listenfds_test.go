//go:build unix

package daemon

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// listenFDsChildEnv makes the test binary the child of
// TestInheritedListeners: it holds the addresses the parent passed.
const listenFDsChildEnv = "IMDSD_TEST_LISTENFDS_WANT"

// TestInheritedListeners passes two listening sockets to a child process
// the way systemd does (fds 3 and 4, LISTEN_FDS, LISTEN_PID set to the
// child's own PID by the shell that execs it, LISTEN_FDNAMES), and checks
// the child takes them over under their addresses and serves on them.
func TestInheritedListeners(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to set LISTEN_PID in")
	}
	var files []*os.File
	var addrs []string
	for _, network := range []string{"tcp4", "tcp6"} {
		host := "127.0.0.1:0"
		if network == "tcp6" {
			host = "[::1]:0"
		}
		ln, err := net.Listen(network, host)
		if err != nil {
			if network == "tcp6" {
				continue // no IPv6 loopback here
			}
			t.Fatal(err)
		}
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		files = append(files, f)
		ln.Close() // the child's copy stays open
		defer f.Close()
	}
	names := strings.TrimSuffix(strings.Repeat("imds:", len(files)), ":")
	// sd_listen_fds(3): LISTEN_PID is the PID of the process meant to
	// use them; the shell's $$ is it after exec.
	cmd := exec.Command(sh, "-c", `LISTEN_PID=$$ exec "$0" "$@"`, os.Args[0], "-test.run=^TestInheritedListenersChild$")
	cmd.Env = append(os.Environ(), listenFDsChildEnv+"="+strings.Join(addrs, ","),
		"LISTEN_FDS="+strconv.Itoa(len(files)), "LISTEN_FDNAMES="+names)
	cmd.ExtraFiles = files
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "serving" {
		t.Logf("child: %s", sc.Text())
	}
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", a, err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if want := "hello from " + a + "\n"; b != want || err != nil {
			t.Errorf("%s answered %q, %v; want %q", a, b, err, want)
		}
	}
}

func TestInheritedListenersChild(t *testing.T) {
	want := os.Getenv(listenFDsChildEnv)
	if want == "" {
		t.Skip("run by TestInheritedListeners only")
	}
	lns, err := inheritedListeners(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for a := range lns {
		got = append(got, a)
	}
	slices.Sort(got)
	wantAddrs := strings.Split(want, ",")
	slices.Sort(wantAddrs)
	if !slices.Equal(got, wantAddrs) {
		t.Fatalf("inheritedListeners keys = %q, want %q", got, wantAddrs)
	}
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		if v, ok := os.LookupEnv(k); ok {
			t.Errorf("%s=%q still set", k, v)
		}
	}
	if again, _ := inheritedListeners(os.Getenv); again != nil {
		t.Errorf("second call = %v, want nil", again)
	}
	os.Stdout.WriteString("serving\n")
	var wg sync.WaitGroup
	for a, ln := range lns {
		wg.Go(func() {
			c, err := ln.Accept()
			if err != nil {
				t.Error(err)
				return
			}
			c.Write([]byte("hello from " + a + "\n"))
			c.Close()
		})
	}
	wg.Wait()
}

func TestInheritedListenersNotOurs(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{name: "none", env: map[string]string{}},
		{name: "another process's", env: map[string]string{"LISTEN_PID": "1", "LISTEN_FDS": "1"}},
		{name: "bad count", env: map[string]string{"LISTEN_PID": strconv.Itoa(os.Getpid()), "LISTEN_FDS": "x"},
			wantErr: `socket activation: LISTEN_FDS must be a number ≥ 1 (got "x")`},
		{name: "zero", env: map[string]string{"LISTEN_PID": strconv.Itoa(os.Getpid()), "LISTEN_FDS": "0"},
			wantErr: `socket activation: LISTEN_FDS must be a number ≥ 1 (got "0")`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lns, err := inheritedListeners(func(k string) string { return tc.env[k] })
			if lns != nil {
				t.Errorf("listeners = %v, want nil", lns)
			}
			if (err == nil) != (tc.wantErr == "") || (err != nil && err.Error() != tc.wantErr) {
				t.Errorf("error = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
