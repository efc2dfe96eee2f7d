package imds_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/imdsd/imdsd/imds"
	"github.com/rs/zerolog"
)

// The server bounds every connection: oversized headers are refused and
// the read timeouts are set.
func TestServerBounds(t *testing.T) {
	f := newFixture(t)
	srv := imds.NewServer(f.h, 0, zerolog.Nop())
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || (srv.WriteTimeout <= 0 && !imds.KernelWriteBound) || srv.IdleTimeout <= 0 {
		t.Errorf("timeouts %v/%v/%v/%v: want all bounded", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
	}
	// SDKs reuse a connection within a burst of requests milliseconds
	// apart; idle ones only cost memory (was 90s, net/http's default).
	if srv.IdleTimeout > 10*time.Second {
		t.Errorf("IdleTimeout = %v, want at most 10s", srv.IdleTimeout)
	}
	ln := serve(t, srv)

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	big := strings.Repeat("a", 2*imds.MaxHeaderBytes)
	if _, err := conn.Write([]byte("GET /latest/meta-data/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + big + "\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status for %d header bytes = %d, want 431", len(big), resp.StatusCode)
	}
}

// serve runs srv on a loopback port until the test ends.
func serve(t *testing.T, srv *http.Server) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln
}

// hangGuard bounds a read that must end because of what the server does;
// it is a failure bound, not a measurement.
const hangGuard = 30 * time.Second

func dialNew(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends one GET on c and returns the status, or 0 when the
// connection failed.
func roundTrip(c net.Conn, addr string) int {
	_ = c.SetDeadline(time.Now().Add(hangGuard))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// closedByServer blocks until the server closes c; it reports false if c
// delivered data or the guard ran out instead.
func closedByServer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(hangGuard))
	_, err := c.Read(make([]byte, 1))
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err)
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout() && !errors.Is(err, os.ErrDeadlineExceeded)
}

// slowTimeouts makes eviction the only way a connection is closed in the
// test's lifetime.
func slowTimeouts(srv *http.Server) {
	srv.IdleTimeout, srv.ReadHeaderTimeout, srv.ReadTimeout = time.Hour, time.Hour, time.Hour
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })

// At the cap, a new connection is served and the oldest waiting one (idle
// or silent) is closed: a flood of connections evicts itself instead of
// locking clients out (issue: idle connections).
func TestServerConnLimitEvictsOldestWaiting(t *testing.T) {
	const limit = 8
	for _, idle := range []bool{true, false} {
		name := "silent new connections"
		if idle {
			name = "idle keep-alive connections"
		}
		t.Run(name, func(t *testing.T) {
			srv := imds.NewServer(okHandler, limit, zerolog.Nop())
			slowTimeouts(srv)
			wentIdle := notifyIdle(srv)
			addr := serve(t, srv).Addr().String()
			var flood []net.Conn
			for range 2 * limit {
				if !idle {
					flood = append(flood, dialNew(t, addr))
					continue
				}
				c := dialNew(t, addr)
				if code := roundTrip(c, addr); code != http.StatusOK {
					t.Fatalf("request on a fresh connection: status %d, want 200", code)
				}
				// net/http reports the connection idle only after the
				// client has its response: wait, so that the order of
				// the connections is the order of this loop.
				<-wentIdle
				flood = append(flood, c)
			}
			// A client arriving now is served on a new connection.
			if code := roundTrip(dialNew(t, addr), addr); code != http.StatusOK {
				t.Errorf("client at the cap: status %d, want 200", code)
			}
			// limit+1 connections made room, oldest first.
			for i, c := range flood[:limit+1] {
				if !closedByServer(c) {
					t.Fatalf("flood connection %d: still open, want closed at the cap", i)
				}
			}
			// The newest are open and served.
			for i, c := range flood[limit+1:] {
				if code := roundTrip(c, addr); code != http.StatusOK {
					t.Errorf("flood connection %d: status %d, want 200 (closed too early)", limit+1+i, code)
				}
			}
		})
	}
}

// notifyIdle reports each connection of srv that turns idle.
func notifyIdle(srv *http.Server) <-chan struct{} {
	ch := make(chan struct{}, 1024)
	limit := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		limit(c, s)
		if s == http.StateIdle {
			ch <- struct{}{}
		}
	}
	return ch
}

// A connection whose request is being answered is not closed while a
// waiting one can be, however old it is.
func TestServerConnLimitSparesBusy(t *testing.T) {
	const limit = 4
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	})
	srv := imds.NewServer(h, limit, zerolog.Nop())
	slowTimeouts(srv)
	addr := serve(t, srv).Addr().String()

	busy := dialNew(t, addr)
	_ = busy.SetDeadline(time.Now().Add(hangGuard))
	if _, err := io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	<-entered
	var silent []net.Conn
	for range limit {
		silent = append(silent, dialNew(t, addr))
	}
	// busy + limit connections: one must go, and it is the oldest silent.
	if !closedByServer(silent[0]) {
		t.Fatal("oldest waiting connection: still open, want closed at the cap")
	}
	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatalf("busy connection: %v, want its response (closed instead of a waiting one)", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("busy connection: status %d, want 200", resp.StatusCode)
	}
}

// A state change of a connection (idle ↔ active, once per request on a
// keep-alive connection) allocates nothing.
func BenchmarkConnState(b *testing.B) {
	srv := imds.NewServer(okHandler, 0, zerolog.Nop())
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	srv.ConnState(c1, http.StateNew)
	b.ReportAllocs()
	for b.Loop() {
		srv.ConnState(c1, http.StateActive)
		srv.ConnState(c1, http.StateIdle)
	}
	srv.ConnState(c1, http.StateClosed)
}

// Listen addresses name one address: 0.0.0.0 and [::] are refused with the
// way to serve other networks (they used to bind every family, print
// http://[::]:P/ and then refuse every request in the Host check).
func TestParseListen(t *testing.T) {
	const everyAddr = "listen: must be one address of this host, not every address; to serve containers or VMs, listen on the address they reach, " +
		"such as 172.17.0.1:8169 on Docker's bridge, and allow their network with --allow-client 172.17.0.0/16 (allow_clients in the config file)"
	tests := []struct {
		in, host, err string
	}{
		{"127.0.0.1:8169", "127.0.0.1", ""},
		{"[::1]:0", "::1", ""},
		{"169.254.169.254:80", "169.254.169.254", ""},
		{"[fd00:ec2::254]:80", "fd00:ec2::254", ""},
		{"LocalHost:8169", "localhost", ""},
		{"0.0.0.0:8169", "", everyAddr + ` (got "0.0.0.0:8169")`},
		{"[::]:8169", "", everyAddr + ` (got "[::]:8169")`},
		{"[::ffff:0.0.0.0]:80", "", everyAddr + ` (got "[::ffff:0.0.0.0]:80")`},
		{"[0:0:0:0:0:0:0:0]:80", "", everyAddr + ` (got "[0:0:0:0:0:0:0:0]:80")`},
		{"0.0.0.0", "", `listen: must be host:port with an IP address or localhost, e.g. 127.0.0.1:8169 or [::1]:8169 (got "0.0.0.0")`},
		{"127.0.0.1:" + strings.Repeat("9", 1000), "", `listen: port must be a number 0..65535 (got "127.0.0.1:` + strings.Repeat("9", 22) + `…")`},
	}
	for _, tc := range tests {
		host, err := imds.ParseListen(tc.in)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if host != tc.host || gotErr != tc.err {
			t.Errorf("ParseListen(%.40q) = %q, %q; want %q, %q", tc.in, host, gotErr, tc.host, tc.err)
		}
	}
}
