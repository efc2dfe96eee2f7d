package rotator

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
)

// FederationToken is the federation-token source: sts:GetFederationToken
// for a named federated user, whose permissions are the intersection of the
// caller's and the session policies given.
type FederationToken struct {
	c  STSClient
	in sts.GetFederationTokenInput
}

// NewFederationToken validates the parameters and returns the source. A
// zero duration leaves STS's default (12h). No session policy is allowed
// (see Warnings).
func NewFederationToken(c STSClient, name string, o SessionOptions, tags []types.Tag) (*FederationToken, error) {
	in := sts.GetFederationTokenInput{
		Name:            aws.String(name),
		DurationSeconds: o.durationSeconds(),
		Policy:          optional(o.Policy),
		PolicyArns:      policyARNs(o.PolicyARNs),
		Tags:            tags,
	}
	if err := validateGetFederationToken(&in); err != nil {
		return nil, err
	}
	return &FederationToken{c: c, in: in}, nil
}

// Warnings returns what the user should know before running the source,
// though it does not stop it: without a session policy (policy_file or
// policy_arn) the session has no permissions of its own and can reach only
// resources whose resource-based policies name the federated user.
func (f *FederationToken) Warnings() []string {
	if f.in.Policy != nil || len(f.in.PolicyArns) > 0 {
		return nil
	}
	return []string{fmt.Sprintf("federation-token without policy_file or policy_arn: the session of federated user %s "+
		"has no permissions of its own; it can reach only resources whose resource-based policies name "+
		"arn:aws:sts::ACCOUNT:federated-user/%[1]s (add a session policy to use the caller's permissions)", aws.ToString(f.in.Name))}
}

// Fetch gets a new federated session.
func (f *FederationToken) Fetch(ctx context.Context) (Credentials, error) {
	in := f.in
	out, err := f.c.GetFederationToken(ctx, &in)
	if err != nil {
		return Credentials{}, fmt.Errorf("get federation token for %s: %w", aws.ToString(f.in.Name), err)
	}
	arn := ""
	if out.FederatedUser != nil {
		arn = aws.ToString(out.FederatedUser.Arn)
	}
	return fromSTS(out.Credentials, "GetFederationToken", arn)
}
