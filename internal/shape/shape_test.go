package shape

import (
	"regexp"
	"testing"
)

// The expressions each function replaces: the reference they must agree
// with on every input.
var reference = []struct {
	name string
	re   *regexp.Regexp
	fn   func(string) bool
}{
	{"RoleName", regexp.MustCompile(`^[\w+=,.@-]+$`), RoleName},
	{"Plain", regexp.MustCompile(`^[A-Za-z0-9._-]+$`), Plain},
	{"Region", regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`), Region},
	{"AccountID", regexp.MustCompile(`^[0-9]{12}$`), AccountID},
	{"InstanceID", regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`), InstanceID},
	{"ImageID", regexp.MustCompile(`^ami-[0-9a-f]{8,17}$`), ImageID},
	{"AvailabilityZoneID", regexp.MustCompile(`^[a-z0-9]+-az[0-9]+$`), AvailabilityZoneID},
	{"MAC", regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2}){5}$`), MAC},
	{"role ARN", regexp.MustCompile(`^arn:aws(?:-[a-z]+)*:iam::\d{12}:role/(?:[\x21-\x7e]+/)?([\w+=,.@-]+)$`),
		func(s string) bool { _, ok := IAMARN(s, "role", true); return ok }},
	{"SAML provider ARN", regexp.MustCompile(`^arn:aws(?:-[a-z]+)*:iam::\d{12}:saml-provider/([\w+=,.@-]+)$`),
		func(s string) bool { _, ok := IAMARN(s, "saml-provider", false); return ok }},
}

var corpus = []string{
	"", "a", "-", "deploy", "my-role+=,.@_x", "bad role", "role/x", "é",
	"A.b_c-9", "a b", "a\n",
	"us-east-1", "us-gov-west-1", "cn-north-1", "eu-west-10", "us-east-", "us--east-1", "use-east-1", "u-east-1",
	"US-east-1", "us-east-1a", "us-1", "us-east-1-", "eu-central-1",
	"123456789012", "12345678901", "1234567890123", "12345678901a",
	"i-0123abcd", "i-0123456789abcdef0", "i-0123ABCD", "i-0123abc", "i-0123456789abcdef", "x-0123abcd",
	"ami-0123abcd", "ami-0123456789abcdef0", "ami-0123abc", "ami-0123456789abcdef01", "ami-0123ABCD",
	"use1-az4", "euw1-az1", "use1-az", "-az4", "use1-az4x", "use1-bz4", "us-e1-az4", "use1-az4-az5",
	"0a:1b:2c:3d:4e:5f", "0a:1b:2c:3d:4e:5", "0a-1b-2c-3d-4e-5f", "0A:1b:2c:3d:4e:5f", "0a:1b:2c:3d:4e:5f:",
	"arn:aws:iam::123456789012:role/deploy",
	"arn:aws:iam::123456789012:role/path/to/deploy",
	"arn:aws:iam::123456789012:role//deploy",
	"arn:aws:iam::123456789012:role/deploy/",
	"arn:aws:iam::123456789012:role/",
	"arn:aws:iam::123456789012:role/pa th/deploy",
	"arn:aws-cn:iam::123456789012:role/deploy",
	"arn:aws-us-gov:iam::123456789012:role/deploy",
	"arn:aws-:iam::123456789012:role/deploy",
	"arn:aws--x:iam::123456789012:role/deploy",
	"arn:awsx:iam::123456789012:role/deploy",
	"arn:aws-X:iam::123456789012:role/deploy",
	"arn:aws:iam::12345678901:role/deploy",
	"arn:aws:iam::123456789012:user/deploy",
	"arn:aws:iam:us-east-1:123456789012:role/deploy",
	"arn:aws:sts::123456789012:role/deploy",
	"arn:aws:iam::123456789012:saml-provider/corp",
	"arn:aws:iam::123456789012:saml-provider/path/corp",
	"arn:aws:iam::123456789012:saml-provider/",
	"arn:aws:iam::123456789012:role/a\x7fb/deploy",
	"xarn:aws:iam::123456789012:role/deploy",
}

func TestAgainstReference(t *testing.T) {
	for _, ref := range reference {
		for _, s := range corpus {
			if got, want := ref.fn(s), ref.re.MatchString(s); got != want {
				t.Errorf("%s(%q) = %v, the expression says %v", ref.name, s, got, want)
			}
		}
	}
	if name, ok := IAMARN("arn:aws:iam::123456789012:role/path/to/deploy", "role", true); !ok || name != "deploy" {
		t.Errorf("IAMARN name = %q, %v", name, ok)
	}
}

func FuzzAgainstReference(f *testing.F) {
	for _, s := range corpus {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, ref := range reference {
			if got, want := ref.fn(s), ref.re.MatchString(s); got != want {
				t.Errorf("%s(%q) = %v, the expression says %v", ref.name, s, got, want)
			}
		}
		for _, typ := range []string{"role", "saml-provider"} {
			re := reference[8].re
			if typ == "saml-provider" {
				re = reference[9].re
			}
			name, ok := IAMARN(s, typ, typ == "role")
			if m := re.FindStringSubmatch(s); ok && (m == nil || m[1] != name) || !ok && m != nil {
				t.Errorf("IAMARN(%q, %s) = %q, %v; expression %q", s, typ, name, ok, m)
			}
		}
	})
}
