package rotator

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Profile is the profile source: whatever an AWS CLI profile resolves to
// through the SDK's shared config (role chains, SSO, credential_process,
// web_identity_token_file, static keys). The daemon builds the provider
// with IMDS disabled, so imdsd never asks itself.
type Profile struct {
	name     string
	roleARN  string
	provider aws.CredentialsProvider
	caller   *callerARN
	now      func() time.Time
}

// NewProfile returns the source for a provider resolved from profile name.
// roleARN is the profile's role_arn, "" when it has none: the role the
// credentials act as, path included. Without one, c (signing with the same
// provider) is asked once who the credentials belong to, for the account in
// iam/info. now is the clock [time.Now].
func NewProfile(name, roleARN string, provider aws.CredentialsProvider, c STSClient, now func() time.Time) *Profile {
	if now == nil {
		now = time.Now
	}
	return &Profile{name: name, roleARN: roleARN, provider: provider, caller: &callerARN{c: c}, now: now}
}

// RoleARN returns the profile's role_arn, "" when it has none; known
// before any Fetch, so the role can be named before credentials exist.
func (p *Profile) RoleARN() string { return p.roleARN }

// Fetch resolves fresh credentials: a cache in front of the provider is
// invalidated first, since the rotator refreshes long before the SDK's own
// expiry window would.
func (p *Profile) Fetch(ctx context.Context) (Credentials, error) {
	if c, ok := p.provider.(interface{ Invalidate() }); ok {
		c.Invalidate()
	}
	creds, err := p.provider.Retrieve(ctx)
	if err != nil {
		return Credentials{}, fmt.Errorf("resolve profile %s: %w", p.name, err)
	}
	if !creds.CanExpire {
		// Long-term keys: advertise a lifetime, as the static source does.
		creds.CanExpire = true
		creds.Expires = p.now().Round(0).Truncate(time.Second).Add(staticLifetime)
	}
	principal := p.roleARN
	if principal == "" {
		principal = p.caller.get(ctx)
	}
	account, role := identity(principal)
	if creds.AccountID == "" {
		creds.AccountID = account
	}
	return Credentials{Credentials: creds, RoleARN: role}, nil
}
