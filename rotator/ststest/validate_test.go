package ststest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	smithymiddleware "github.com/aws/smithy-go/middleware"
)

// skipClientValidation removes the SDK's own required-parameter checks so
// the server's answer to a missing parameter can be seen.
func skipClientValidation(o *sts.Options) {
	o.APIOptions = append(o.APIOptions, func(s *smithymiddleware.Stack) error {
		_, err := s.Initialize.Remove("OperationInputValidation")
		return err
	})
}

func TestValidationErrors(t *testing.T) {
	const prefix = "1 validation error detected: "
	long := func(n int) string { return strings.Repeat("a", n) }
	policyARN := func(arn string) []types.PolicyDescriptorType {
		return []types.PolicyDescriptorType{{Arn: aws.String(arn)}}
	}
	tags := func(n int) []types.Tag {
		out := make([]types.Tag, n)
		for i := range out {
			out[i] = types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")}
		}
		return out
	}
	base := func(mod func(*sts.AssumeRoleInput)) *sts.AssumeRoleInput {
		in := &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1")}
		mod(in)
		return in
	}

	tests := []struct {
		name string
		in   *sts.AssumeRoleInput
		code string
		msg  string
	}{
		{"session name too short", base(func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String("a") }), "ValidationError",
			prefix + "Value 'a' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2"},
		{"session name too long", base(func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String(long(65)) }), "ValidationError",
			prefix + "Value '" + long(65) + "' at 'roleSessionName' failed to satisfy constraint: Member must have length less than or equal to 64"},
		{"session name charset", base(func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String("my session") }), "ValidationError",
			prefix + `Value 'my session' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*`},
		{"missing session name", base(func(in *sts.AssumeRoleInput) { in.RoleSessionName = nil }), "ValidationError",
			prefix + "Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null"},
		{"role ARN too short", base(func(in *sts.AssumeRoleInput) { in.RoleArn = aws.String("arn:aws:iam::1:role") }), "ValidationError",
			prefix + "Value 'arn:aws:iam::1:role' at 'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20"},
		{"not a role ARN", base(func(in *sts.AssumeRoleInput) { in.RoleArn = aws.String("arn:aws:iam::123456789012:user/alice") }), "ValidationError",
			"Request ARN is invalid"},
		{"duration too short", base(func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(899) }), "ValidationError",
			prefix + "Value '899' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"},
		{"duration too long", base(func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(43201) }), "ValidationError",
			prefix + "Value '43201' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200"},
		{"external ID charset", base(func(in *sts.AssumeRoleInput) { in.ExternalId = aws.String("a b") }), "ValidationError",
			prefix + `Value 'a b' at 'externalId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@:\/-]*`},
		{"serial too short", base(func(in *sts.AssumeRoleInput) { in.SerialNumber = aws.String("GAHT1234") }), "ValidationError",
			prefix + "Value 'GAHT1234' at 'serialNumber' failed to satisfy constraint: Member must have length greater than or equal to 9"},
		{"token code not digits", base(func(in *sts.AssumeRoleInput) { in.TokenCode = aws.String("12345a") }), "ValidationError",
			prefix + `Value '12345a' at 'tokenCode' failed to satisfy constraint: Member must satisfy regular expression pattern: [\d]*`},
		{"token code length", base(func(in *sts.AssumeRoleInput) { in.TokenCode = aws.String("12345") }), "ValidationError",
			prefix + "Value '12345' at 'tokenCode' failed to satisfy constraint: Member must have length greater than or equal to 6"},
		{"source identity aws: prefix", base(func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String("aws:me") }), "ValidationError",
			prefix + `Value 'aws:me' at 'sourceIdentity' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*`},
		{"policy too long", base(func(in *sts.AssumeRoleInput) { in.Policy = aws.String(long(2049)) }), "ValidationError",
			prefix + "Value '" + long(2049) + "' at 'policy' failed to satisfy constraint: Member must have length less than or equal to 2048"},
		{"policy not JSON", base(func(in *sts.AssumeRoleInput) { in.Policy = aws.String("{") }), "MalformedPolicyDocument",
			"The policy is not in the valid JSON format."},
		{"policy ARN too short", base(func(in *sts.AssumeRoleInput) { in.PolicyArns = policyARN("arn:aws:iam::1:p") }), "ValidationError",
			prefix + "Value 'arn:aws:iam::1:p' at 'policyArns.1.member.arn' failed to satisfy constraint: Member must have length greater than or equal to 20"},
		{"too many policy ARNs", base(func(in *sts.AssumeRoleInput) {
			for range 11 {
				in.PolicyArns = append(in.PolicyArns, policyARN("arn:aws:iam::aws:policy/ReadOnlyAccess")...)
			}
		}), "ValidationError", prefix + "Value '11 items' at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to 10"},
		{"too many tags", base(func(in *sts.AssumeRoleInput) { in.Tags = tags(51) }), "ValidationError",
			prefix + "Value '51 items' at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50"},
		{"tag key charset", base(func(in *sts.AssumeRoleInput) { in.Tags = []types.Tag{{Key: aws.String("a*b"), Value: aws.String("v")}} }), "ValidationError",
			prefix + `Value 'a*b' at 'tags.1.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]+`},
		{"tag value too long", base(func(in *sts.AssumeRoleInput) {
			in.Tags = []types.Tag{{Key: aws.String("k"), Value: aws.String(long(257))}}
		}), "ValidationError",
			prefix + "Value '" + long(257) + "' at 'tags.1.member.value' failed to satisfy constraint: Member must have length less than or equal to 256"},
		{"duplicate tag keys", base(func(in *sts.AssumeRoleInput) {
			in.Tags = []types.Tag{{Key: aws.String("Team"), Value: aws.String("a")}, {Key: aws.String("team"), Value: aws.String("b")}}
		}), "ValidationError", "Duplicate tag keys found. Please note that Tag keys are case insensitive."},
		{"transitive key too long", base(func(in *sts.AssumeRoleInput) { in.TransitiveTagKeys = []string{long(129)} }), "ValidationError",
			prefix + "Value '" + long(129) + "' at 'transitiveTagKeys.1.member' failed to satisfy constraint: Member must have length less than or equal to 128"},
		{"two errors", base(func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String("a"); in.DurationSeconds = aws.Int32(1) }), "ValidationError",
			"2 validation errors detected: Value 'a' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2; " +
				"Value '1' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"},
	}
	srv := newServer(t, nil)
	client := baseClient(srv)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.AssumeRole(context.Background(), tc.in, skipClientValidation)
			code, msg, status := apiError(t, err)
			if code != tc.code || status != 400 {
				t.Errorf("ErrorCode() = %q, HTTPStatusCode() = %d, want %q, 400", code, status, tc.code)
			}
			if msg != tc.msg {
				t.Errorf("ErrorMessage() = %q\nwant %q", msg, tc.msg)
			}
		})
	}
	if got := srv.Issued(); len(got) != 0 {
		t.Errorf("Issued() = %d credentials, want none", len(got))
	}
}

func TestValidationOtherActions(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t, nil)
	signed := baseClient(srv)
	anon := newClient(srv, aws.AnonymousCredentials{}, 1)
	tests := []struct {
		name string
		call func() error
		msg  string
	}{
		{"GetSessionToken duration", func() error {
			_, err := signed.GetSessionToken(ctx, &sts.GetSessionTokenInput{DurationSeconds: aws.Int32(129601)})
			return err
		}, "1 validation error detected: Value '129601' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 129600"},
		{"GetFederationToken name", func() error {
			_, err := signed.GetFederationToken(ctx, &sts.GetFederationTokenInput{Name: aws.String(strings.Repeat("n", 33))})
			return err
		}, "1 validation error detected: Value '" + strings.Repeat("n", 33) + "' at 'name' failed to satisfy constraint: Member must have length less than or equal to 32"},
		{"web identity token too short", func() error {
			_, err := anon.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1"), WebIdentityToken: aws.String("abc")})
			return err
		}, "1 validation error detected: Value 'abc' at 'webIdentityToken' failed to satisfy constraint: Member must have length greater than or equal to 4"},
		{"SAML assertion too short", func() error {
			_, err := anon.AssumeRoleWithSAML(ctx, &sts.AssumeRoleWithSAMLInput{RoleArn: aws.String(roleARN), PrincipalArn: aws.String("arn:aws:iam::123456789012:saml-provider/X"), SAMLAssertion: aws.String("abc")})
			return err
		}, "1 validation error detected: Value 'abc' at 'sAMLAssertion' failed to satisfy constraint: Member must have length greater than or equal to 4"},
		{"SAML missing principal", func() error {
			_, err := anon.AssumeRoleWithSAML(ctx, &sts.AssumeRoleWithSAMLInput{RoleArn: aws.String(roleARN), SAMLAssertion: aws.String("abcd")}, skipClientValidation)
			return err
		}, "1 validation error detected: Value null at 'principalArn' failed to satisfy constraint: Member must not be null"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, msg, status := apiError(t, tc.call())
			if code != "ValidationError" || status != 400 || msg != tc.msg {
				t.Errorf("error = %s %q (HTTP %d)\nwant ValidationError %q (HTTP 400)", code, msg, status, tc.msg)
			}
		})
	}
}
