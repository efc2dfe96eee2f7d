package imds_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imdsd/imdsd/imds"
	"github.com/rs/zerolog"
)

// The handler leaves Content-Length to net/http where net/http writes one
// itself, and sends no header a client does not use. These tests read the
// raw response from a real server, so they see what net/http adds.

// rawResponse sends one request on a new connection to srv and returns the
// response as read off the wire, and its body.
func rawResponse(t *testing.T, addr, method, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, addr)
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func serveFixture(t *testing.T, f *fixture) string {
	t.Helper()
	srv := imds.NewServer(f.h, 0, zerolog.Nop())
	return serve(t, srv).Addr().String()
}

func headerNames(h http.Header) []string {
	var names []string
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func TestWireHeaders(t *testing.T) {
	f := newFixture(t)
	f.publish()
	addr := serveFixture(t, f)
	tok := f.token(t, "21600")
	creds := "/latest/meta-data/iam/security-credentials/imdsd-dev"
	want := f.get(t, creds).Body.Bytes()

	tests := []struct {
		name, method, path string
		hdr                map[string]string
		status             int
		names              []string
		length             int64
	}{
		{"credentials GET", "GET", creds, map[string]string{"X-aws-ec2-metadata-token": tok}, 200,
			[]string{"Content-Length", "Content-Type", "Date", "Server"}, int64(len(want))},
		{"credentials HEAD", "HEAD", creds, map[string]string{"X-aws-ec2-metadata-token": tok}, 200,
			[]string{"Content-Length", "Content-Type", "Date", "Server"}, int64(len(want))},
		{"token PUT", "PUT", "/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "300"}, 200,
			[]string{"Content-Length", "Content-Type", "Date", "Server", "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"}, imds.TokenLen},
		{"401", "GET", creds, nil, 401,
			[]string{"Content-Length", "Content-Type", "Date", "Server"}, 0},
		{"401 HEAD", "HEAD", creds, nil, 401,
			[]string{"Content-Length", "Content-Type", "Date", "Server"}, 0},
		{"405", "POST", "/latest/api/token", nil, 405,
			[]string{"Allow", "Content-Length", "Content-Type", "Date", "Server"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawResponse(t, addr, tc.method, tc.path, tc.hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if got := headerNames(resp.Header); !slices.Equal(got, tc.names) {
				t.Errorf("headers = %v, want %v", got, tc.names)
			}
			if resp.ContentLength != tc.length || resp.Header.Get("Content-Length") != strconv.FormatInt(tc.length, 10) {
				t.Errorf("Content-Length = %d (%q), want %d", resp.ContentLength, resp.Header.Get("Content-Length"), tc.length)
			}
			if len(resp.TransferEncoding) != 0 {
				t.Errorf("Transfer-Encoding = %v, want none", resp.TransferEncoding)
			}
			if resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("Server") != "EC2ws" {
				t.Errorf("Content-Type %q, Server %q; want text/plain, EC2ws", resp.Header.Get("Content-Type"), resp.Header.Get("Server"))
			}
			if tc.name == "credentials GET" && string(body) != string(want) {
				t.Errorf("body = %q, want %q", body, want)
			}
			if tc.method == "HEAD" && len(body) != 0 {
				t.Errorf("HEAD body = %d bytes", len(body))
			}
		})
	}
}

// TestWireLongBodies: around net/http's buffer size, every credentials
// document still goes out whole with its Content-Length, never chunked.
func TestWireLongBodies(t *testing.T) {
	f := newFixture(t)
	addr := serveFixture(t, f)
	tok := f.token(t, "21600")
	creds := "/latest/meta-data/iam/security-credentials/imdsd-dev"
	publish := func(tokenLen int) []byte {
		c := testCreds
		c.SessionToken = strings.Repeat("T", tokenLen)
		f.h.Publish(imds.Snapshot{Credentials: c, Obtained: t0, RoleARN: "arn:aws:iam::123456789012:role/imdsd-dev"})
		return f.get(t, creds).Body.Bytes()
	}
	base := len(publish(1)) - 1
	for _, size := range []int{2047, 2048, 2049, 4096, 9000} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			want := publish(size - base)
			if len(want) != size {
				t.Fatalf("document is %d bytes, want %d", len(want), size)
			}
			for _, method := range []string{"GET", "HEAD"} {
				resp, body := rawResponse(t, addr, method, creds, map[string]string{"X-aws-ec2-metadata-token": tok})
				if resp.ContentLength != int64(size) || len(resp.TransferEncoding) != 0 {
					t.Errorf("%s: Content-Length %d, Transfer-Encoding %v; want %d, none", method, resp.ContentLength, resp.TransferEncoding, size)
				}
				if method == "GET" && string(body) != string(want) {
					t.Errorf("GET body differs from the document (%d bytes, want %d)", len(body), size)
				}
			}
		})
	}
}

// TestWireTTLEcho: each PUT echoes its own TTL, whichever was asked before.
func TestWireTTLEcho(t *testing.T) {
	f := newFixture(t)
	addr := serveFixture(t, f)
	for _, ttl := range []string{"300", "300", "21600", "1", "300", "21600"} {
		resp, body := rawResponse(t, addr, "PUT", "/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": ttl})
		if got := resp.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"); resp.StatusCode != 200 || got != ttl {
			t.Errorf("PUT ttl %s: status %d, echo %q", ttl, resp.StatusCode, got)
		}
		if len(body) != imds.TokenLen {
			t.Errorf("token of %d bytes, want %d", len(body), imds.TokenLen)
		}
	}
}

// TestWireTimeouts: a client that stops half-way through its request, or
// holds a connection idle, is cut off by the server's deadlines (shortened
// here; TestServerBounds checks NewServer bounds them all).
func TestWireTimeouts(t *testing.T) {
	f := newFixture(t)
	srv := imds.NewServer(f.h, 0, zerolog.Nop())
	srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	addr := serve(t, srv).Addr().String()
	for _, tc := range []struct{ name, send string }{
		{"stalled request line", "GET /latest/meta-data/ HT"},
		{"stalled headers", "GET /latest/meta-data/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"},
		{"idle after a request", "GET /latest/meta-data/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-aws-ec2-metadata-token: x\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialNew(t, addr)
			defer c.Close()
			if _, err := io.WriteString(c, tc.send); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(hangGuard))
			// Whatever answer comes, the server then closes: the read
			// ends with EOF (or a reset), never the guard's timeout.
			_, err := io.Copy(io.Discard, c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("connection still open after %v: the server's deadline did not cut it", hangGuard)
			}
		})
	}
}

// TestWireSlowReader: a client that sends requests and never reads the
// answers is cut off once its connection's writes have waited the write
// bound (shortened here), whether the kernel (TCP_USER_TIMEOUT) or
// net/http (WriteTimeout) enforces it.
func TestWireSlowReader(t *testing.T) {
	defer imds.SetWriteBound(300 * time.Millisecond)()
	f := newFixture(t)
	f.publish()
	tok := f.token(t, "21600")
	srv := imds.NewServer(f.h, 0, zerolog.Nop())
	if srv.WriteTimeout > 0 {
		srv.WriteTimeout = 300 * time.Millisecond
	}
	closed := make(chan struct{})
	hook := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		hook(c, s)
		if s == http.StateClosed {
			close(closed)
		}
	}
	addr := serve(t, srv).Addr().String()
	c := dialNew(t, addr)
	defer c.Close()
	req := "GET /latest/meta-data/iam/security-credentials/imdsd-dev HTTP/1.1\r\nHost: " + addr +
		"\r\nX-aws-ec2-metadata-token: " + tok + "\r\n\r\n"
	// Enough answers to fill the client's receive window and the server's
	// send buffer many times over; the writes block once the server stops
	// reading, so they run beside the wait.
	go func() {
		batch := strings.Repeat(req, 100)
		for range 200 {
			if _, err := io.WriteString(c, batch); err != nil {
				return
			}
		}
	}()
	select {
	case <-closed:
	case <-time.After(hangGuard):
		t.Fatalf("a client that never reads still holds its connection after %v", hangGuard)
	}
}
