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
// zero duration leaves STS's default (12h).
func NewFederationToken(c STSClient, name string, o SessionOptions, tags []types.Tag) (*FederationToken, error) {
	in := sts.GetFederationTokenInput{
		Name:            aws.String(name),
		DurationSeconds: o.durationSeconds(),
		Policy:          optional(o.Policy),
		PolicyArns:      policyARNs(o.PolicyARNs),
		Tags:            tags,
	}
	if err := ValidateGetFederationToken(&in); err != nil {
		return nil, err
	}
	return &FederationToken{c: c, in: in}, nil
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
