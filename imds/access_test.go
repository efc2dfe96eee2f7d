package imds_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/imdsd/imdsd/imds"
)

// fakeAccess lets the caller whose RemoteAddr is in allowed have role
// "deploy"; every caller may have the others. The default role is deploy
// for allowed callers, imdsd-dev for the rest.
type fakeAccess struct{ allowed map[string]bool }

func (a fakeAccess) Allow(r *http.Request, role string) (bool, string) {
	if role != "deploy" || a.allowed[r.RemoteAddr] {
		return true, "allowed"
	}
	return false, "not_allowed"
}

func (a fakeAccess) Variant(_ *http.Request, role string) string { return role }

func (a fakeAccess) DefaultRole(r *http.Request) (string, bool) {
	if r.RemoteAddr == "127.0.0.1:9" {
		return "", false // may have none
	}
	if a.allowed[r.RemoteAddr] {
		return "deploy", true
	}
	return "imdsd-dev", true
}

type recorder struct {
	mu     sync.Mutex
	events []imds.Event
}

func (o *recorder) Observe(_ *http.Request, e imds.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, e)
}

// With an Access, a role's credentials go only to callers it allows, the
// listing names each caller's default (404 for one that may have none),
// and the Observer sees every answer and refusal.
func TestAccessAndObserver(t *testing.T) {
	obs := &recorder{}
	f := newFixture(t, func(c *imds.Config) {
		c.Roles = []string{"deploy"}
		c.Access = fakeAccess{allowed: map[string]bool{"127.0.0.1:1": true}}
		c.Observer = obs
	})
	f.publish()
	_ = f.h.PublishRole("deploy", imds.Snapshot{Credentials: testCreds, Obtained: t0})
	tok := f.token(t, "21600")
	do := func(remote, path string) (int, string) {
		w := f.do(req{path: path, remote: remote, hdr: map[string]string{"X-aws-ec2-metadata-token": tok}})
		return w.Code, w.Body.String()
	}
	const md = "/latest/meta-data/iam/security-credentials/"
	for _, tc := range []struct {
		remote, path string
		code         int
		body         string
	}{
		{"127.0.0.1:1", md, 200, "deploy"},
		{"127.0.0.1:2", md, 200, "imdsd-dev"},
		{"127.0.0.1:9", md, 404, ""},
		{"127.0.0.1:2", md + "deploy", 403, ""},
		{"127.0.0.1:2", "/latest/meta-data/iam/security-credentials-extended/deploy", 403, ""},
	} {
		if code, body := do(tc.remote, tc.path); code != tc.code || (tc.body != "" && body != tc.body) {
			t.Errorf("%s %s = %d %q, want %d %q", tc.remote, tc.path, code, body, tc.code, tc.body)
		}
	}
	if code, _ := do("127.0.0.1:1", md+"deploy"); code != 200 {
		t.Errorf("allowed caller, deploy = %d, want 200", code)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	var refused, served int
	for _, e := range obs.events {
		if e.Listener != "imds" || e.Role != "deploy" {
			t.Errorf("event %+v: want listener imds, role deploy", e)
		}
		switch {
		case !e.Allowed && e.Status == 403 && e.Reason == "not_allowed" && e.KeyID == "":
			refused++
		case e.Allowed && e.Status == 200 && e.KeyID == testCreds.AccessKeyID:
			served++
		}
	}
	if refused != 2 || served != 1 {
		t.Errorf("events %+v: want 2 refusals and 1 answer", obs.events)
	}
}
