package imds_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/rs/zerolog"

	"github.com/imdsd/imdsd/imds"
)

// Several roles: the listing names the default role only (one line, as on
// EC2), each role's path serves its own credentials, and one role failing
// leaves the others served.
func TestSeveralRoles(t *testing.T) {
	f := newFixture(t, func(c *imds.Config) { c.RoleName, c.Roles = "readonly", []string{"deploy", "ci"} })
	const md = "/latest/meta-data/iam/"
	creds := func(id string) imds.Snapshot {
		return imds.Snapshot{Credentials: aws.Credentials{AccessKeyID: id, SecretAccessKey: "s", SessionToken: "t", CanExpire: true, Expires: t0.Add(time.Hour)},
			Obtained: t0, RoleARN: "arn:aws:iam::123456789012:role/x"}
	}
	f.h.Publish(creds("ASIAREADONLY00000001"))
	if err := f.h.PublishRole("deploy", creds("ASIADEPLOY0000000001")); err != nil {
		t.Fatal(err)
	}
	if err := f.h.PublishRole("ci", imds.Snapshot{ErrCode: "AccessDenied", ErrMessage: "denied", ErrAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := f.h.PublishRole("other", creds("x")); !errors.Is(err, imds.ErrUnknownRole) {
		t.Errorf("PublishRole(other) = %v, want ErrUnknownRole", err)
	}
	for path, want := range map[string]string{
		md + "security-credentials/":                "readonly",
		md + "security-credentials":                 "readonly",
		md + "security-credentials-extended/":       "readonly",
		md + "security-credentials/readonly":        `"AccessKeyId" : "ASIAREADONLY00000001"`,
		md + "security-credentials/deploy":          `"AccessKeyId" : "ASIADEPLOY0000000001"`,
		md + "security-credentials-extended/deploy": `"AccessKeyId" : "ASIADEPLOY0000000001"`,
		md + "security-credentials/deploy/":         `"AccessKeyId" : "ASIADEPLOY0000000001"`,
		md + "security-credentials/ci":              `"Code" : "AccessDenied"`,
		md + "info":                                 "instance-profile/readonly",
	} {
		w := f.get(t, path)
		if w.Code != 200 || !strings.Contains(w.Body.String(), want) {
			t.Errorf("GET %s = %d %q, want 200 containing %q", path, w.Code, w.Body, want)
		}
		if strings.HasSuffix(path, "credentials/") && w.Body.String() != want {
			t.Errorf("GET %s = %q, want exactly %q", path, w.Body, want)
		}
	}
	if w := f.get(t, md+"security-credentials/unknown"); w.Code != 404 {
		t.Errorf("unknown role: %d, want 404", w.Code)
	}
}

func TestRoleNamesValidated(t *testing.T) {
	_, err := imds.NewHandler(imds.Config{RoleName: "a", Region: "us-east-1", Roles: []string{"b", "a", "b", "no/slash", ""}}, zerolog.Nop())
	want := []string{`roles: each name once (got "a")`, `roles: each name once (got "b")`, `roles: names of 1..64 characters of [A-Za-z0-9+=,.@_-] (got "no/slash")`, `(got "")`}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("NewHandler() = %v, want it to contain %s", err, w)
		}
	}
}
