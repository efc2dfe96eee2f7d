package ststest_test

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/google/go-cmp/cmp"

	"github.com/imdsd/imdsd/rotator/ststest"
)

// fromSDK converts credentials parsed by the SDK to the server's record.
func fromSDK(action, arn string, c *types.Credentials) ststest.Credentials {
	if c == nil {
		return ststest.Credentials{}
	}
	return ststest.Credentials{
		Action:          action,
		AccessKeyID:     aws.ToString(c.AccessKeyId),
		SecretAccessKey: aws.ToString(c.SecretAccessKey),
		SessionToken:    aws.ToString(c.SessionToken),
		Expiration:      aws.ToTime(c.Expiration),
		ARN:             arn,
	}
}

// onlyIssued returns the single set of credentials srv issued.
func onlyIssued(t *testing.T, srv *ststest.Server) ststest.Credentials {
	t.Helper()
	issued := srv.Issued()
	if len(issued) != 1 {
		t.Fatalf("len(Issued()) = %d, want 1", len(issued))
	}
	return issued[0]
}

func TestAssumeRole(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t, nil)
	out, err := baseClient(srv).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String(roleARN),
		RoleSessionName: aws.String("s1"),
		DurationSeconds: aws.Int32(1800),
		Policy:          aws.String(`{"Version":"2012-10-17","Statement":[]}`),
		SourceIdentity:  aws.String("alice"),
	})
	if err != nil {
		t.Fatalf("AssumeRole() error = %v", err)
	}
	wantARN := "arn:aws:sts::123456789012:assumed-role/app/s1"
	issued := onlyIssued(t, srv)
	if diff := cmp.Diff(issued, fromSDK("AssumeRole", wantARN, out.Credentials)); diff != "" {
		t.Errorf("credentials parsed by the SDK differ from Issued() (-issued +sdk):\n%s", diff)
	}
	if want := t0.Add(30 * time.Minute); !issued.Expiration.Equal(want) {
		t.Errorf("Expiration = %v, want %v", issued.Expiration, want)
	}
	if got := aws.ToString(out.AssumedRoleUser.Arn); got != wantARN {
		t.Errorf("AssumedRoleUser.Arn = %q, want %q", got, wantARN)
	}
	if got := aws.ToString(out.AssumedRoleUser.AssumedRoleId); !regexp.MustCompile(`^AROA[A-Z2-7]{17}:s1$`).MatchString(got) {
		t.Errorf("AssumedRoleId = %q, want AROA + 17 characters + :s1", got)
	}
	//lint:ignore SA1019 deprecated in the SDK, still part of the wire format (SPEC.md R11.2)
	packed := out.PackedPolicySize
	if packed == nil || *packed < 1 || *packed > 100 {
		t.Errorf("PackedPolicySize = %v, want 1..100", packed)
	}
	if got, want := aws.ToInt32(out.SessionTokenSize), int32(len(issued.SessionToken)); got != want {
		t.Errorf("SessionTokenSize = %d, want %d", got, want)
	}
	if got := aws.ToInt32(out.SessionTokenUtilization); got < 1 || got > 100 {
		t.Errorf("SessionTokenUtilization = %d, want 1..100", got)
	}
	if got := aws.ToString(out.SourceIdentity); got != "alice" {
		t.Errorf("SourceIdentity = %q, want %q", got, "alice")
	}

	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("len(Requests()) = %d, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Action != "AssumeRole" || r.AccessKeyID != baseAKID || r.Status != 200 || !r.Time.Equal(t0) {
		t.Errorf("Requests()[0] = %+v, want AssumeRole signed by %s at %v with status 200", r, baseAKID, t0)
	}
	if got := r.Params.Get("DurationSeconds"); got != "1800" {
		t.Errorf("Params DurationSeconds = %q, want 1800", got)
	}
}

func TestAssumeRoleDefaultsAndLists(t *testing.T) {
	srv := newServer(t, nil)
	out, err := baseClient(srv).AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn:           aws.String("arn:aws:iam::210987654321:role/path/to/deploy"),
		RoleSessionName:   aws.String("ci@example.com"),
		Tags:              []types.Tag{{Key: aws.String("team"), Value: aws.String("infra")}},
		TransitiveTagKeys: []string{"team"},
		PolicyArns:        []types.PolicyDescriptorType{{Arn: aws.String("arn:aws:iam::aws:policy/ReadOnlyAccess")}},
	})
	if err != nil {
		t.Fatalf("AssumeRole() error = %v", err)
	}
	if want := t0.Add(time.Hour); !aws.ToTime(out.Credentials.Expiration).Equal(want) {
		t.Errorf("Expiration = %v, want %v (default 3600 s)", out.Credentials.Expiration, want)
	}
	if got, want := aws.ToString(out.AssumedRoleUser.Arn), "arn:aws:sts::210987654321:assumed-role/deploy/ci@example.com"; got != want {
		t.Errorf("AssumedRoleUser.Arn = %q, want %q", got, want)
	}
	if out.SourceIdentity != nil {
		t.Errorf("SourceIdentity = %q, want absent", *out.SourceIdentity)
	}
	p := srv.Requests()[0].Params
	for k, want := range map[string]string{
		"Tags.member.1.Key":          "team",
		"Tags.member.1.Value":        "infra",
		"TransitiveTagKeys.member.1": "team",
		"PolicyArns.member.1.arn":    "arn:aws:iam::aws:policy/ReadOnlyAccess",
		"Version":                    "2011-06-15",
	} {
		if got := p.Get(k); got != want {
			t.Errorf("Params[%q] = %q, want %q", k, got, want)
		}
	}
}

func TestIssuedCredentialsLookReal(t *testing.T) {
	srv := newServer(t, nil)
	client := baseClient(srv)
	for range 3 {
		if _, err := client.GetSessionToken(context.Background(), &sts.GetSessionTokenInput{}); err != nil {
			t.Fatalf("GetSessionToken() error = %v", err)
		}
	}
	seen := map[string]bool{}
	for _, c := range srv.Issued() {
		if !regexp.MustCompile(`^ASIA[A-Z0-9]{16}$`).MatchString(c.AccessKeyID) {
			t.Errorf("AccessKeyID = %q, want ASIA + 16 uppercase alphanumerics", c.AccessKeyID)
		}
		if len(c.SecretAccessKey) != 40 {
			t.Errorf("len(SecretAccessKey) = %d, want 40", len(c.SecretAccessKey))
		}
		if _, err := base64.StdEncoding.DecodeString(c.SessionToken); err != nil || len(c.SessionToken) < 300 {
			t.Errorf("SessionToken = %.20q… (len %d), want long base64", c.SessionToken, len(c.SessionToken))
		}
		for _, v := range []string{c.AccessKeyID, c.SecretAccessKey, c.SessionToken} {
			if seen[v] {
				t.Errorf("value %.20q… issued twice, want random", v)
			}
			seen[v] = true
		}
	}
}

func TestMinimumSessionTokenSize(t *testing.T) {
	srv := newServer(t, nil)
	// Two attempts: with a response this large, the server can answer
	// while net/http's writeLoop still reads the request body for extra
	// bytes; smithy closes that body once the response is in, the
	// writeLoop fails and closes the connection under the response reader
	// ("use of closed network connection"). The SDK retries that (its
	// default is 3 attempts); it showed up here about once in ten runs on
	// a loaded machine.
	client := newClient(srv, credentials.NewStaticCredentialsProvider(baseAKID, baseSecret, ""), 2)
	out, err := client.AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1"), MinimumSessionTokenSize: aws.Int32(4000),
	})
	if err != nil {
		t.Fatalf("AssumeRole() error = %v", err)
	}
	if n := len(aws.ToString(out.Credentials.SessionToken)); n < 4000 || n > 4096 {
		t.Errorf("len(SessionToken) = %d, want 4000..4096", n)
	}
	if got := aws.ToInt32(out.SessionTokenUtilization); got < 97 {
		t.Errorf("SessionTokenUtilization = %d, want ≥ 97", got)
	}
	_, err = client.AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1"), MinimumSessionTokenSize: aws.Int32(4097),
	})
	wantAPIError(t, err, "ValidationError", 400)
}

func TestGetSessionTokenAndFederationToken(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t, nil)
	client := baseClient(srv)

	st, err := client.GetSessionToken(ctx, &sts.GetSessionTokenInput{})
	if err != nil {
		t.Fatalf("GetSessionToken() error = %v", err)
	}
	ft, err := client.GetFederationToken(ctx, &sts.GetFederationTokenInput{
		Name:            aws.String("bob"),
		DurationSeconds: aws.Int32(129600),
		Policy:          aws.String(`{"Version":"2012-10-17","Statement":[]}`),
	})
	if err != nil {
		t.Fatalf("GetFederationToken() error = %v", err)
	}
	fedARN := "arn:aws:sts::123456789012:federated-user/bob"
	want := []ststest.Credentials{
		fromSDK("GetSessionToken", userARN, st.Credentials),
		fromSDK("GetFederationToken", fedARN, ft.Credentials),
	}
	if diff := cmp.Diff(srv.Issued(), want); diff != "" {
		t.Errorf("Issued() differs from what the SDK parsed (-issued +sdk):\n%s", diff)
	}
	if got := want[0].Expiration; !got.Equal(t0.Add(12 * time.Hour)) {
		t.Errorf("GetSessionToken Expiration = %v, want default 43200 s after %v", got, t0)
	}
	if got := want[1].Expiration; !got.Equal(t0.Add(36 * time.Hour)) {
		t.Errorf("GetFederationToken Expiration = %v, want 129600 s after %v", got, t0)
	}
	if got := aws.ToString(ft.FederatedUser.Arn); got != fedARN {
		t.Errorf("FederatedUser.Arn = %q, want %q", got, fedARN)
	}
	if got, want := aws.ToString(ft.FederatedUser.FederatedUserId), "123456789012:bob"; got != want {
		t.Errorf("FederatedUserId = %q, want %q", got, want)
	}
	//lint:ignore SA1019 deprecated in the SDK, still part of the wire format (SPEC.md R11.2)
	if ft.PackedPolicySize == nil {
		t.Error("PackedPolicySize = nil, want a value when a policy is given")
	}
	if got, wantSize := aws.ToInt32(st.SessionTokenSize), int32(len(want[0].SessionToken)); got != wantSize {
		t.Errorf("GetSessionToken SessionTokenSize = %d, want %d", got, wantSize)
	}
}

func TestGetCallerIdentity(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t, nil)
	base := baseClient(srv)
	if _, err := base.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1")}); err != nil {
		t.Fatalf("AssumeRole() error = %v", err)
	}
	if _, err := base.GetSessionToken(ctx, &sts.GetSessionTokenInput{}); err != nil {
		t.Fatalf("GetSessionToken() error = %v", err)
	}
	if _, err := base.GetFederationToken(ctx, &sts.GetFederationTokenInput{Name: aws.String("bob")}); err != nil {
		t.Fatalf("GetFederationToken() error = %v", err)
	}
	issued := srv.Issued()

	tests := []struct {
		name        string
		client      *sts.Client
		arn, userID string // userID as a regexp
	}{
		{"base user key", base, userARN, `^AIDA[A-Z2-7]{17}$`},
		{"assumed role key", issuedClient(srv, issued[0]), "arn:aws:sts::123456789012:assumed-role/app/s1", `^AROA[A-Z2-7]{17}:s1$`},
		{"session token key", issuedClient(srv, issued[1]), userARN, `^AIDA[A-Z2-7]{17}$`},
		{"federated key", issuedClient(srv, issued[2]), "arn:aws:sts::123456789012:federated-user/bob", `^123456789012:bob$`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				t.Fatalf("GetCallerIdentity() error = %v", err)
			}
			if got := aws.ToString(out.Arn); got != tc.arn {
				t.Errorf("Arn = %q, want %q", got, tc.arn)
			}
			if got := aws.ToString(out.Account); got != account {
				t.Errorf("Account = %q, want %q", got, account)
			}
			if got := aws.ToString(out.UserId); !regexp.MustCompile(tc.userID).MatchString(got) {
				t.Errorf("UserId = %q, want match for %s", got, tc.userID)
			}
		})
	}
}

func TestAssumeRoleWithWebIdentity(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t, nil)
	client := newClient(srv, aws.AnonymousCredentials{}, 1)
	token := makeJWT(t, map[string]any{
		"iss": "https://oidc.eks.us-east-1.amazonaws.com/id/ABC",
		"sub": "system:serviceaccount:default:app",
		"aud": []string{"sts.amazonaws.com"},
		"exp": t0.Add(time.Hour).Unix(),
	})
	out, err := client.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(roleARN),
		RoleSessionName:  aws.String("pod"),
		WebIdentityToken: aws.String(token),
	})
	if err != nil {
		t.Fatalf("AssumeRoleWithWebIdentity() error = %v", err)
	}
	wantARN := "arn:aws:sts::123456789012:assumed-role/app/pod"
	if diff := cmp.Diff(onlyIssued(t, srv), fromSDK("AssumeRoleWithWebIdentity", wantARN, out.Credentials)); diff != "" {
		t.Errorf("credentials differ (-issued +sdk):\n%s", diff)
	}
	got := []string{aws.ToString(out.SubjectFromWebIdentityToken), aws.ToString(out.Audience), aws.ToString(out.Provider), aws.ToString(out.AssumedRoleUser.Arn)}
	want := []string{"system:serviceaccount:default:app", "sts.amazonaws.com", "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC", wantARN}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Subject, Audience, Provider, Arn mismatch (-want +got):\n%s", diff)
	}
	if r := srv.Requests()[0]; r.AccessKeyID != "" {
		t.Errorf("Requests()[0].AccessKeyID = %q, want \"\" (unsigned)", r.AccessKeyID)
	}
}

func TestAssumeRoleWithWebIdentityErrors(t *testing.T) {
	srv := newServer(t, nil, ststest.WithRole(ststest.Role{ARN: roleARN, WebIdentityAudience: "my-app"}))
	client := newClient(srv, aws.AnonymousCredentials{}, 1)
	claims := func(aud string, exp time.Time) map[string]any {
		return map[string]any{"iss": "https://issuer.example", "sub": "u1", "aud": aud, "exp": exp.Unix()}
	}
	tests := []struct {
		name, token, code, message string
	}{
		{"not a JWT", "not-a-jwt-token", "InvalidIdentityToken", "Couldn't parse web identity token."},
		{"expired", makeJWT(t, claims("my-app", t0.Add(-time.Second))), "ExpiredTokenException",
			"Token expired: current date/time 1795312800 must be before the expiration date/time 1795312799"},
		{"wrong audience", makeJWT(t, claims("other", t0.Add(time.Hour))), "InvalidIdentityToken", "Incorrect token audience"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
				RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1"), WebIdentityToken: aws.String(tc.token),
			})
			code, msg, status := apiError(t, err)
			if code != tc.code || msg != tc.message || status != 400 {
				t.Errorf("error = %s %q (HTTP %d), want %s %q (HTTP 400)", code, msg, status, tc.code, tc.message)
			}
		})
	}
}

func TestAssumeRoleWithSAML(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t, nil)
	client := newClient(srv, aws.AnonymousCredentials{}, 1)
	const (
		issuer    = "https://idp.example.com/saml"
		principal = "arn:aws:iam::123456789012:saml-provider/CorpIdP"
	)
	out, err := client.AssumeRoleWithSAML(ctx, &sts.AssumeRoleWithSAMLInput{
		RoleArn:         aws.String(roleARN),
		PrincipalArn:    aws.String(principal),
		SAMLAssertion:   aws.String(makeSAML(issuer, "alice@example.com", "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent", "alice", t0.Add(5*time.Minute))),
		DurationSeconds: aws.Int32(900),
	})
	if err != nil {
		t.Fatalf("AssumeRoleWithSAML() error = %v", err)
	}
	wantARN := "arn:aws:sts::123456789012:assumed-role/app/alice"
	if diff := cmp.Diff(onlyIssued(t, srv), fromSDK("AssumeRoleWithSAML", wantARN, out.Credentials)); diff != "" {
		t.Errorf("credentials differ (-issued +sdk):\n%s", diff)
	}
	sum := sha1.Sum([]byte(issuer + account + "/CorpIdP"))
	got := []string{aws.ToString(out.Subject), aws.ToString(out.SubjectType), aws.ToString(out.Issuer), aws.ToString(out.Audience), aws.ToString(out.NameQualifier), aws.ToString(out.AssumedRoleUser.Arn)}
	want := []string{"alice@example.com", "persistent", issuer, "https://signin.aws.amazon.com/saml", base64.StdEncoding.EncodeToString(sum[:]), wantARN}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Subject, SubjectType, Issuer, Audience, NameQualifier, Arn mismatch (-want +got):\n%s", diff)
	}

	t.Run("expired assertion", func(t *testing.T) {
		_, err := client.AssumeRoleWithSAML(ctx, &sts.AssumeRoleWithSAMLInput{
			RoleArn: aws.String(roleARN), PrincipalArn: aws.String(principal),
			SAMLAssertion: aws.String(makeSAML(issuer, "alice", "", "alice", t0)),
		})
		wantAPIError(t, err, "ExpiredTokenException", 400)
	})
	t.Run("not SAML", func(t *testing.T) {
		_, err := client.AssumeRoleWithSAML(ctx, &sts.AssumeRoleWithSAMLInput{
			RoleArn: aws.String(roleARN), PrincipalArn: aws.String(principal),
			SAMLAssertion: aws.String(base64.StdEncoding.EncodeToString([]byte("<html/>"))),
		})
		wantAPIError(t, err, "InvalidIdentityToken", 400)
	})
}

// TestStscredsProvider drives the SDK's credential-provider path
// (stscreds.AssumeRoleProvider behind aws.CredentialsCache) against the fake.
func TestStscredsProvider(t *testing.T) {
	srv := newServer(t, nil)
	provider := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(baseClient(srv), roleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "imdsd"
		o.Duration = 45 * time.Minute
	}))
	got, err := provider.Retrieve(context.Background())
	if err != nil {
		t.Fatalf("Retrieve() error = %v", err)
	}
	issued := onlyIssued(t, srv)
	want := aws.Credentials{
		AccessKeyID:     issued.AccessKeyID,
		SecretAccessKey: issued.SecretAccessKey,
		SessionToken:    issued.SessionToken,
		Source:          stscreds.ProviderName,
		CanExpire:       true,
		Expires:         t0.Add(45 * time.Minute),
		AccountID:       account,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Retrieve() mismatch (-want +got):\n%s", diff)
	}
	if p := srv.Requests()[0].Params; p.Get("RoleSessionName") != "imdsd" || p.Get("DurationSeconds") != "2700" {
		t.Errorf("Params = %v, want RoleSessionName=imdsd DurationSeconds=2700", p)
	}
}

// WithMaxLifetime shortens every lifetime it grants, without an error, and
// leaves shorter requests alone.
func TestWithMaxLifetime(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t, nil, ststest.WithMaxLifetime(40*time.Minute))
	client := baseClient(srv)
	ar, err := client.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1")})
	if err != nil {
		t.Fatalf("AssumeRole() error = %v", err)
	}
	short, err := client.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s2"), DurationSeconds: aws.Int32(900)})
	if err != nil {
		t.Fatalf("AssumeRole(900 s) error = %v", err)
	}
	st, err := client.GetSessionToken(ctx, &sts.GetSessionTokenInput{})
	if err != nil {
		t.Fatalf("GetSessionToken() error = %v", err)
	}
	for _, tc := range []struct {
		name string
		got  *time.Time
		want time.Duration
	}{
		{"AssumeRole, 1h asked", ar.Credentials.Expiration, 40 * time.Minute},
		{"AssumeRole, 15m asked", short.Credentials.Expiration, 15 * time.Minute},
		{"GetSessionToken, 12h by default", st.Credentials.Expiration, 40 * time.Minute},
	} {
		if !tc.got.Equal(t0.Add(tc.want)) {
			t.Errorf("%s: Expiration = %v, want %v after %v", tc.name, tc.got, tc.want, t0)
		}
	}
}
