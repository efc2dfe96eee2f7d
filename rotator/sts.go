package rotator

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
)

// STSClient is the part of *sts.Client the STS sources call. Tests use
// *sts.Client against rotator/ststest, or a hand-written fake.
type STSClient interface {
	AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
	AssumeRoleWithWebIdentity(ctx context.Context, in *sts.AssumeRoleWithWebIdentityInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleWithWebIdentityOutput, error)
	AssumeRoleWithSAML(ctx context.Context, in *sts.AssumeRoleWithSAMLInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleWithSAMLOutput, error)
	GetSessionToken(ctx context.Context, in *sts.GetSessionTokenInput, optFns ...func(*sts.Options)) (*sts.GetSessionTokenOutput, error)
	GetFederationToken(ctx context.Context, in *sts.GetFederationTokenInput, optFns ...func(*sts.Options)) (*sts.GetFederationTokenOutput, error)
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, optFns ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

var _ STSClient = (*sts.Client)(nil)

// Session settings shared by the role-assuming sources.
type SessionOptions struct {
	// RoleSessionName names the session in CloudTrail; default derived
	// from the user and host (DefaultRoleSessionName).
	RoleSessionName string
	// Duration of the credentials; 0 leaves STS's default (1h).
	Duration time.Duration
	// Policy is an inline session policy (JSON); PolicyARNs managed ones.
	Policy     string
	PolicyARNs []string
}

func (o SessionOptions) durationSeconds() *int32 { return durationSeconds(o.Duration) }

// durationSeconds converts d for STS, nil for "STS's default". Durations
// beyond int32 seconds saturate (and then fail validation) instead of
// wrapping around to a short one.
func durationSeconds(d time.Duration) *int32 {
	if d <= 0 {
		return nil
	}
	return aws.Int32(int32(min(d/time.Second, math.MaxInt32)))
}

func policyARNs(arns []string) []types.PolicyDescriptorType {
	var out []types.PolicyDescriptorType
	for _, a := range arns {
		out = append(out, types.PolicyDescriptorType{Arn: aws.String(a)})
	}
	return out
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// fromSTS converts what STS returned; source names the API in
// aws.Credentials.Source, principal is the ARN the answer names.
func fromSTS(c *types.Credentials, source, principal string) (Credentials, error) {
	if c == nil || c.AccessKeyId == nil || c.SecretAccessKey == nil || c.Expiration == nil {
		return Credentials{}, fmt.Errorf("%s: answer carries no credentials", source)
	}
	account, role := identity(principal)
	return Credentials{
		Credentials: aws.Credentials{
			AccessKeyID:     aws.ToString(c.AccessKeyId),
			SecretAccessKey: aws.ToString(c.SecretAccessKey),
			SessionToken:    aws.ToString(c.SessionToken),
			Source:          source,
			CanExpire:       true,
			Expires:         c.Expiration.UTC(),
			AccountID:       account,
		},
		RoleARN: role,
	}, nil
}

// identity returns the account of a principal's ARN and who it acts as:
// for an assumed-role ARN (arn:aws:sts::123456789012:assumed-role/NAME/SESSION)
// the role's (arn:aws:iam::123456789012:role/NAME), else the ARN as it is.
// The role's path is not in the assumed-role ARN; callers that know the
// configured role ARN use that instead. Both are "" for "", and the
// account is "" for what is not an ARN.
func identity(principal string) (account, role string) {
	a, err := arn.Parse(principal)
	if err != nil {
		return "", principal
	}
	if res, ok := strings.CutPrefix(a.Resource, "assumed-role/"); ok && a.Service == "sts" {
		name, _, _ := strings.Cut(res, "/")
		a.Service, a.Region, a.Resource = "iam", "", "role/"+name
		return a.AccountID, a.String()
	}
	return a.AccountID, principal
}

// errInput wraps a failure to obtain a secret input (token, assertion, MFA
// code): permanent until a person fixes it, so it is retried slowly.
type errInput struct {
	what string
	err  error
}

func (e *errInput) Error() string { return "obtain " + e.what + ": " + e.err.Error() }
func (e *errInput) Unwrap() error { return e.err }

func getInput(ctx context.Context, in Input, what string) (string, error) {
	v, err := in.Get(ctx)
	if err != nil {
		return "", &errInput{what: what, err: err}
	}
	return v, nil
}

var errNoCode = errors.New("no MFA code source configured")
