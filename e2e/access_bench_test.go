//go:build linux

package e2e

// What a role's allow list costs one credentials GET, in process and free
// of the noise that other load puts on the load run's throughput figures
// (BENCHMARKS.md, "Access control"). The imds handler is the real one, and
// the caller lookup the real kernel lookup of a real loopback connection;
// benchAccess does what the daemon's accessControl does per request (its
// Allow: the connection's Peer, its Identity, caller.Decide), which is
// unexported in package daemon, so a change there must be mirrored here.
//
//	go test -run '^$' -bench AccessPolicy -benchmem ./e2e

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/rs/zerolog"

	"github.com/imdsd/imdsd/caller"
	"github.com/imdsd/imdsd/imds"
)

// benchAccess is imds.Access as the daemon implements it for one role
// with an allow list; process asks for the caller's process too, as the
// audit trail (or an executables rule) does.
type benchAccess struct {
	policy  *caller.Policy
	role    string
	process bool
}

func (a *benchAccess) Allow(r *http.Request, _ string) (bool, string) {
	p := caller.FromContext(r.Context())
	var id caller.Identity
	switch {
	case p == nil:
		id = caller.Unknown(caller.ErrNotTCP)
	case a.process:
		id = p.WithProcess()
	default:
		id = p.Identity()
	}
	d := caller.Decide(a.policy, id)
	return d.Allow, d.Reason.String()
}

func (a *benchAccess) DefaultRole(*http.Request) (string, bool) { return a.role, true }

func (a *benchAccess) Variant(_ *http.Request, role string) string { return role }

// discardResponse keeps nothing but the status, reusing its header map.
type discardResponse struct {
	h      http.Header
	status int
}

func (d *discardResponse) Header() http.Header         { return d.h }
func (d *discardResponse) WriteHeader(s int)           { d.status = s }
func (d *discardResponse) Write(p []byte) (int, error) { return len(p), nil }

func BenchmarkAccessPolicy(b *testing.B) {
	const role = "imdsd-dev"
	sys, err := caller.NewSystem(caller.Options{})
	if err != nil {
		b.Skipf("no caller lookup here: %v", err)
	}
	defer sys.Close()
	policy, _, err := caller.Compile(role, &caller.Allow{Users: []string{strconv.Itoa(os.Getuid())}}, caller.Env{Support: caller.Supported})
	if err != nil {
		b.Fatal(err)
	}
	// A real connection of this process: the kernel names its owner.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer server.Close()
	connContext := caller.ConnContext(sys)

	for _, bc := range []struct {
		name    string
		access  *benchAccess // nil: no allow list (no Access at all)
		newConn bool         // a new Peer per request: the kernel lookup each time
	}{
		{"off", nil, false},
		{"on, keep-alive", &benchAccess{policy: policy, role: role}, false},
		{"on, new connection", &benchAccess{policy: policy, role: role}, true},
		{"on with process, keep-alive", &benchAccess{policy: policy, role: role, process: true}, false},
		{"on with process, new connection", &benchAccess{policy: policy, role: role, process: true}, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := imds.Config{RoleName: role, Region: "us-east-1", HostSeed: "bench", TokenMode: imds.TokenRequired,
				ListenAddrs: []string{ln.Addr().String()}, Now: time.Now, Stats: &imds.RequestStats{}}
			if bc.access != nil {
				cfg.Access = bc.access
			}
			tokens, err := imds.NewTokens(imds.NewTokenKey(), nil)
			if err != nil {
				b.Fatal(err)
			}
			cfg.Tokens = tokens
			h, err := imds.NewHandler(cfg, zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			h.Publish(imds.Snapshot{Obtained: now, Credentials: aws.Credentials{AccessKeyID: "ASIABENCHBENCHBENCH1", SecretAccessKey: "secret",
				SessionToken: "token", CanExpire: true, Expires: now.Add(time.Hour), Source: "bench"}})
			r := httptest.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/latest/meta-data/iam/security-credentials/"+role, nil)
			r.RemoteAddr = server.RemoteAddr().String()
			r.Header["X-Aws-Ec2-Metadata-Token"] = []string{tokens.Issue(time.Hour)}
			ctx := context.WithValue(connContext(context.Background(), server), http.LocalAddrContextKey, server.LocalAddr())
			r = r.WithContext(ctx)
			w := &discardResponse{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				if bc.newConn {
					// What the server does for each accepted connection.
					r = r.WithContext(context.WithValue(connContext(context.Background(), server), http.LocalAddrContextKey, server.LocalAddr()))
				}
				clear(w.h)
				h.ServeHTTP(w, r)
			}
			if w.status != http.StatusOK {
				b.Fatalf("status %d, want 200", w.status)
			}
		})
	}
}
