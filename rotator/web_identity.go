package rotator

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// WebIdentityOptions configure NewWebIdentity.
type WebIdentityOptions struct {
	SessionOptions
	// ProviderID is only for OAuth 2.0 providers (www.amazon.com,
	// graph.facebook.com); leave empty for OIDC.
	ProviderID string
}

// WebIdentity is the web-identity source: sts:AssumeRoleWithWebIdentity
// with a token obtained afresh on every refresh (a file a CI agent or
// Kubernetes rewrites, a command, a CI runner's OIDC endpoint). The call is
// unsigned: no base credentials are needed.
type WebIdentity struct {
	c     STSClient
	in    sts.AssumeRoleWithWebIdentityInput
	token Input
}

// NewWebIdentity validates every parameter but the token and returns the
// source.
func NewWebIdentity(c STSClient, roleARN string, token Input, o WebIdentityOptions) (*WebIdentity, error) {
	in := sts.AssumeRoleWithWebIdentityInput{
		RoleArn:         aws.String(roleARN),
		RoleSessionName: aws.String(o.RoleSessionName),
		DurationSeconds: o.durationSeconds(),
		Policy:          optional(o.Policy),
		PolicyArns:      policyARNs(o.PolicyARNs),
		ProviderId:      optional(o.ProviderID),
	}
	check := in
	check.WebIdentityToken = aws.String("placeholder-token") // checked per fetch
	if err := validateAssumeRoleWithWebIdentity(&check); err != nil {
		return nil, err
	}
	if token == nil {
		return nil, fmt.Errorf("web identity: no token source; set web_identity_token_file, web_identity_token_command or web_identity_ci")
	}
	return &WebIdentity{c: c, in: in, token: token}, nil
}

// Fetch obtains a token and exchanges it.
func (w *WebIdentity) Fetch(ctx context.Context) (Credentials, error) {
	tok, err := getInput(ctx, w.token, "web identity token")
	if err != nil {
		return Credentials{}, err
	}
	in := w.in
	in.WebIdentityToken = aws.String(tok)
	if err := validateAssumeRoleWithWebIdentity(&in); err != nil {
		return Credentials{}, &errInput{what: "web identity token", err: err}
	}
	out, err := w.c.AssumeRoleWithWebIdentity(ctx, &in)
	if err != nil {
		return Credentials{}, fmt.Errorf("assume role %s with web identity: %w", aws.ToString(w.in.RoleArn), err)
	}
	creds, err := fromSTS(out.Credentials, "AssumeRoleWithWebIdentity", assumedARN(out.AssumedRoleUser))
	if err != nil {
		return Credentials{}, err
	}
	creds.RoleARN = aws.ToString(w.in.RoleArn)
	return creds, nil
}
