package install_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imdsd/imdsd/install"
	"github.com/imdsd/imdsd/internal/endpoint"
)

// recorder is a Runner that records argv and answers from a script.
type recorder struct {
	calls   []string
	answers []string
}

func (r *recorder) run(_ context.Context, name string, args ...string) ([]byte, error) {
	r.calls = append(r.calls, strings.Join(append([]string{name}, args...), " "))
	if len(r.answers) == 0 {
		return nil, nil
	}
	a := r.answers[0]
	r.answers = r.answers[1:]
	return []byte(a), nil
}

func TestAddRemoveAliasLinux(t *testing.T) {
	ctx := context.Background()
	r := &recorder{answers: []string{"1: lo    inet 127.0.0.1/8 scope host lo\n"}}
	if err := install.AddAlias(ctx, r.run, endpoint.IMDSv4); err != nil {
		t.Fatalf("AddAlias() = %v, want nil", err)
	}
	r.answers = []string{"1: lo    inet6 fd00:ec2::254/128 scope global nodad \\ valid_lft forever\n"}
	if err := install.RemoveAlias(ctx, r.run, endpoint.IMDSv6); err != nil {
		t.Fatalf("RemoveAlias() = %v, want nil", err)
	}
	want := []string{
		"ip -o -4 addr show dev lo",
		"ip addr add 169.254.169.254/32 dev lo",
		"ip -o -6 addr show dev lo",
		"ip -6 addr del fd00:ec2::254/128 dev lo",
	}
	if diff := cmp.Diff(want, r.calls); diff != "" {
		t.Errorf("commands run (-want +got):\n%s", diff)
	}
}

func TestAliasRefusesOtherAddresses(t *testing.T) {
	for _, s := range []string{"8.8.8.8", "127.0.0.53", "2001:db8::1"} {
		r := &recorder{}
		if err := install.AddAlias(context.Background(), r.run, netip.MustParseAddr(s)); err == nil {
			t.Errorf("AddAlias(%s) = nil, want an error", s)
		}
		if err := install.RemoveAlias(context.Background(), r.run, netip.MustParseAddr(s)); err == nil {
			t.Errorf("RemoveAlias(%s) = nil, want an error", s)
		}
		if len(r.calls) > 0 {
			t.Errorf("AddAlias/RemoveAlias(%s) ran %q", s, r.calls)
		}
	}
}
