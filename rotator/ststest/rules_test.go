package ststest_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/imdsd/imdsd/rotator/ststest"
)

const (
	strictRole = "arn:aws:iam::123456789012:role/strict"
	longRole   = "arn:aws:iam::123456789012:role/long"
	denied     = "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: sts:AssumeRole on resource: " + strictRole
)

func TestRoleRules(t *testing.T) {
	srv := newServer(t, nil,
		ststest.WithRole(ststest.Role{ARN: strictRole, ExternalID: "ext-123", RequireMFA: true}),
		ststest.WithRole(ststest.Role{ARN: longRole, MaxSessionDuration: 12 * time.Hour}),
	)
	client := baseClient(srv)
	in := func(role string, mod func(*sts.AssumeRoleInput)) *sts.AssumeRoleInput {
		in := &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String("s1")}
		if mod != nil {
			mod(in)
		}
		return in
	}
	strict := func(ext, serial, code string) func(*sts.AssumeRoleInput) {
		return func(in *sts.AssumeRoleInput) {
			if ext != "" {
				in.ExternalId = aws.String(ext)
			}
			if serial != "" {
				in.SerialNumber = aws.String(serial)
			}
			if code != "" {
				in.TokenCode = aws.String(code)
			}
		}
	}
	tests := []struct {
		name    string
		in      *sts.AssumeRoleInput
		code    string // "" = success
		status  int
		message string
	}{
		{name: "all conditions met", in: in(strictRole, strict("ext-123", mfaSerial, goodCode))},
		{name: "missing external ID", in: in(strictRole, strict("", mfaSerial, goodCode)), code: "AccessDenied", status: 403, message: denied},
		{name: "wrong external ID", in: in(strictRole, strict("ext-999", mfaSerial, goodCode)), code: "AccessDenied", status: 403, message: denied},
		{name: "missing MFA", in: in(strictRole, strict("ext-123", "", "")), code: "AccessDenied", status: 403, message: denied},
		{name: "wrong MFA code", in: in(strictRole, strict("ext-123", mfaSerial, "654321")), code: "AccessDenied", status: 403,
			message: "MultiFactorAuthentication failed with invalid MFA one time pass code."},
		{name: "serial without code", in: in(strictRole, strict("ext-123", mfaSerial, "")), code: "AccessDenied", status: 403,
			message: "MultiFactorAuthentication failed with invalid MFA one time pass code."},
		{name: "unknown MFA device", in: in(strictRole, strict("ext-123", "arn:aws:iam::123456789012:mfa/mallory", goodCode)), code: "AccessDenied", status: 403,
			message: "MultiFactorAuthentication failed, unable to validate MFA code. Please verify your MFA serial number is valid and associated with this user."},
		{name: "default max session is one hour", in: in(roleARN, func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(3601) }), code: "ValidationError", status: 400,
			message: "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."},
		{name: "configured max session allows 12h", in: in(longRole, func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(43200) })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.AssumeRole(context.Background(), tc.in)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("AssumeRole() error = %v, want nil", err)
				}
				return
			}
			code, msg, status := apiError(t, err)
			if code != tc.code || status != tc.status || msg != tc.message {
				t.Errorf("error = %s %q (HTTP %d)\nwant %s %q (HTTP %d)", code, msg, status, tc.code, tc.message, tc.status)
			}
		})
	}
}

func TestRoleChaining(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t, nil, ststest.WithRole(ststest.Role{ARN: longRole, MaxSessionDuration: 12 * time.Hour}))
	first, err := baseClient(srv).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String(longRole), RoleSessionName: aws.String("hop1"), DurationSeconds: aws.Int32(43200),
	})
	if err != nil {
		t.Fatalf("AssumeRole() with the base key error = %v", err)
	}
	chained := issuedClient(srv, srv.Issued()[0])

	_, err = chained.AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String(longRole), RoleSessionName: aws.String("hop2"), DurationSeconds: aws.Int32(3601),
	})
	code, msg, status := apiError(t, err)
	if want := "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."; code != "ValidationError" || status != 400 || msg != want {
		t.Errorf("chained AssumeRole(3601 s) error = %s %q (HTTP %d), want ValidationError %q (HTTP 400)", code, msg, status, want)
	}

	second, err := chained.AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String(roleARN), RoleSessionName: aws.String("hop2"), DurationSeconds: aws.Int32(3600),
	})
	if err != nil {
		t.Fatalf("chained AssumeRole(3600 s) error = %v", err)
	}
	if aws.ToString(second.Credentials.AccessKeyId) == aws.ToString(first.Credentials.AccessKeyId) {
		t.Error("chained AssumeRole returned the caller's key, want a new one")
	}
	if r := srv.Requests()[2]; r.AccessKeyID != aws.ToString(first.Credentials.AccessKeyId) {
		t.Errorf("Requests()[2].AccessKeyID = %q, want the first session's key %q", r.AccessKeyID, aws.ToString(first.Credentials.AccessKeyId))
	}
}

func TestSessionCredentialRestrictions(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t, nil)
	base := baseClient(srv)
	if err := assumeRole(ctx, base); err != nil {
		t.Fatalf("AssumeRole() error = %v", err)
	}
	if _, err := base.GetFederationToken(ctx, &sts.GetFederationTokenInput{Name: aws.String("bob")}); err != nil {
		t.Fatalf("GetFederationToken() error = %v", err)
	}
	roleSession, fedSession := issuedClient(srv, srv.Issued()[0]), issuedClient(srv, srv.Issued()[1])

	tests := []struct {
		name string
		call func() error
		msg  string
	}{
		{"GetSessionToken with role credentials", func() error {
			_, err := roleSession.GetSessionToken(ctx, &sts.GetSessionTokenInput{})
			return err
		}, "Cannot call GetSessionToken with session credentials"},
		{"GetFederationToken with role credentials", func() error {
			_, err := roleSession.GetFederationToken(ctx, &sts.GetFederationTokenInput{Name: aws.String("bob")})
			return err
		}, "Cannot call GetFederationToken with session credentials"},
		{"AssumeRole with federated credentials", func() error { return assumeRole(ctx, fedSession) },
			"User: arn:aws:sts::123456789012:federated-user/bob is not authorized to perform: sts:AssumeRole on resource: " + roleARN},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, msg, status := apiError(t, tc.call())
			if code != "AccessDenied" || status != 403 || msg != tc.msg {
				t.Errorf("error = %s %q (HTTP %d), want AccessDenied %q (HTTP 403)", code, msg, status, tc.msg)
			}
		})
	}
}

// TestMFASession shows that a session created by GetSessionToken with MFA
// satisfies a role that requires MFA, as aws:MultiFactorAuthPresent does.
func TestMFASession(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t, nil, ststest.WithRole(ststest.Role{ARN: strictRole, RequireMFA: true}))
	base := baseClient(srv)
	if _, err := base.GetSessionToken(ctx, &sts.GetSessionTokenInput{}); err != nil {
		t.Fatalf("GetSessionToken() error = %v", err)
	}
	if _, err := base.GetSessionToken(ctx, &sts.GetSessionTokenInput{SerialNumber: aws.String(mfaSerial), TokenCode: aws.String(goodCode)}); err != nil {
		t.Fatalf("GetSessionToken() with MFA error = %v", err)
	}
	_, err := base.GetSessionToken(ctx, &sts.GetSessionTokenInput{SerialNumber: aws.String(mfaSerial), TokenCode: aws.String("000000")})
	wantAPIError(t, err, "AccessDenied", 403)

	issued := srv.Issued()
	in := &sts.AssumeRoleInput{RoleArn: aws.String(strictRole), RoleSessionName: aws.String("s1")}
	_, err = issuedClient(srv, issued[0]).AssumeRole(ctx, in)
	wantAPIError(t, err, "AccessDenied", 403)
	if _, err := issuedClient(srv, issued[1]).AssumeRole(ctx, in); err != nil {
		t.Errorf("AssumeRole() from an MFA session error = %v, want nil", err)
	}
}
