package rotator

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// SAML is the saml source: sts:AssumeRoleWithSAML with an assertion (the
// base64 SAMLResponse) obtained afresh on every refresh, since assertions
// are short-lived and single-use. The call is unsigned.
type SAML struct {
	c         STSClient
	in        sts.AssumeRoleWithSAMLInput
	assertion Input
}

// NewSAML validates every parameter but the assertion and returns the
// source. principalARN is the IAM SAML provider
// (arn:aws:iam::ACCOUNT:saml-provider/NAME).
func NewSAML(c STSClient, roleARN, principalARN string, assertion Input, o SessionOptions) (*SAML, error) {
	in := sts.AssumeRoleWithSAMLInput{
		RoleArn:         aws.String(roleARN),
		PrincipalArn:    aws.String(principalARN),
		DurationSeconds: o.durationSeconds(),
		Policy:          optional(o.Policy),
		PolicyArns:      policyARNs(o.PolicyARNs),
	}
	check := in
	check.SAMLAssertion = aws.String("placeholder-assertion") // checked per fetch
	if err := validateAssumeRoleWithSAML(&check); err != nil {
		return nil, err
	}
	if assertion == nil {
		return nil, fmt.Errorf("saml: no assertion source; set saml_assertion_file or saml_assertion_command")
	}
	return &SAML{c: c, in: in, assertion: assertion}, nil
}

// Fetch obtains an assertion and exchanges it.
func (s *SAML) Fetch(ctx context.Context) (Credentials, error) {
	a, err := getInput(ctx, s.assertion, "SAML assertion")
	if err != nil {
		return Credentials{}, err
	}
	in := s.in
	in.SAMLAssertion = aws.String(a)
	if err := validateAssumeRoleWithSAML(&in); err != nil {
		return Credentials{}, &errInput{what: "SAML assertion", err: err}
	}
	out, err := s.c.AssumeRoleWithSAML(ctx, &in)
	if err != nil {
		return Credentials{}, fmt.Errorf("assume role %s with SAML: %w", aws.ToString(s.in.RoleArn), err)
	}
	creds, err := fromSTS(out.Credentials, "AssumeRoleWithSAML", assumedARN(out.AssumedRoleUser))
	if err != nil {
		return Credentials{}, err
	}
	creds.RoleARN = aws.ToString(s.in.RoleArn)
	return creds, nil
}
