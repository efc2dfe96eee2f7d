package rotator_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/imdsd/imdsd/rotator"
	"github.com/imdsd/imdsd/rotator/ststest"
)

// Identities known to the fake STS of these tests.
const (
	srcAccount      = "123456789012"
	srcAKID         = "AKIAIOSFODNN7EXAMPLE"
	srcSecret       = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	srcUserARN      = "arn:aws:iam::123456789012:user/alice"
	srcRoleARN      = "arn:aws:iam::123456789012:role/app"
	srcMFASerial    = "arn:aws:iam::123456789012:mfa/alice"
	srcSAMLProvider = "arn:aws:iam::123456789012:saml-provider/corp-idp"
	srcAudience     = "sts.amazonaws.com"
	srcPolicy       = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`
	srcPolicyARN1   = "arn:aws:iam::aws:policy/ReadOnlyAccess"
	srcPolicyARN2   = "arn:aws:iam::123456789012:policy/deploy"
)

// srcClock is a settable clock shared by the fake STS (WithClock) and the
// sources (MFAOptions.Now, the now of Profile and Static).
type srcClock struct {
	mu sync.Mutex
	t  time.Time
}

// newSrcClock starts at the current second, so credentials issued on it
// are also valid by the wall clock the SDK's credential cache reads.
func newSrcClock() *srcClock { return &srcClock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *srcClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *srcClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newSrcServer starts a fake STS on clk that knows alice's long-term key.
func newSrcServer(t *testing.T, clk *srcClock, opts ...ststest.Option) *ststest.Server {
	t.Helper()
	base := []ststest.Option{
		ststest.WithClock(clk.Now),
		ststest.WithBaseCredentials(srcAKID, srcSecret, srcUserARN),
	}
	srv := ststest.NewServer(append(base, opts...)...)
	t.Cleanup(srv.Close)
	return srv
}

// srcClient is a real STS client for srv signing with creds; attempts 1
// turns off retries (0 keeps the SDK's default).
func srcClient(srv *ststest.Server, creds aws.CredentialsProvider, attempts int) *sts.Client {
	return sts.New(sts.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      creds,
		RetryMaxAttempts: attempts,
	})
}

func srcBase() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(srcAKID, srcSecret, "")
}

// srcWant is what a source must return for credentials the fake STS issued.
func srcWant(is ststest.Credentials, source, roleARN string) rotator.Credentials {
	return rotator.Credentials{
		Credentials: aws.Credentials{
			AccessKeyID:     is.AccessKeyID,
			SecretAccessKey: is.SecretAccessKey,
			SessionToken:    is.SessionToken,
			Source:          source,
			CanExpire:       true,
			Expires:         is.Expiration,
			AccountID:       srcAccount,
		},
		RoleARN: roleARN,
	}
}

// srcLastIssued returns the latest credentials srv issued.
func srcLastIssued(t *testing.T, srv *ststest.Server) ststest.Credentials {
	t.Helper()
	is := srv.Issued()
	if len(is) == 0 {
		t.Fatal("Issued() is empty, want at least one set")
	}
	return is[len(is)-1]
}

// srcRequests returns the requests of action srv received, in order.
func srcRequests(srv *ststest.Server, action string) []ststest.Request {
	var out []ststest.Request
	for _, r := range srv.Requests() {
		if r.Action == action {
			out = append(out, r)
		}
	}
	return out
}

// srcParams builds the form parameters of a request of action.
func srcParams(action string, kv ...string) url.Values {
	v := url.Values{"Action": {action}, "Version": {"2011-06-15"}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// srcAPIError returns the smithy.APIError in err's chain.
func srcAPIError(t *testing.T, err error) smithy.APIError {
	t.Helper()
	var api smithy.APIError
	if !errors.As(err, &api) {
		t.Fatalf("Fetch() = %v, want an error wrapping a smithy.APIError", err)
	}
	return api
}

// srcJWT builds an unsigned-looking OIDC token (header.payload.signature);
// the fake STS reads its claims and ignores the signature.
func srcJWT(sub, aud string, exp time.Time) string {
	return ststest.JWT(map[string]any{
		"iss": "https://oidc.example.com",
		"sub": sub,
		"aud": aud,
		"iat": exp.Add(-time.Hour).Unix(),
		"exp": exp.Unix(),
	})
}

// srcSAML builds a base64 SAML Response ststest accepts, with the AWS Role
// and RoleSessionName attributes.
func srcSAML(session string, notOnOrAfter time.Time) string {
	return ststest.SAMLResponse{
		Issuer: "https://idp.example.com/saml", NameID: "alice@example.com", Session: session,
		Roles: []string{srcRoleARN + "," + srcSAMLProvider}, NotOnOrAfter: notOnOrAfter,
	}.Encode()
}

// srcCodes hands out MFA codes in turn (the last one again once they run
// out) and counts how often it was asked.
type srcCodes struct {
	mu    sync.Mutex
	codes []string
	err   error
	asked int
}

func (c *srcCodes) get(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked++
	if c.err != nil {
		return "", c.err
	}
	return c.codes[min(c.asked, len(c.codes))-1], nil
}

func (c *srcCodes) Asked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.asked
}

// srcInput adapts a function to rotator.Input.
type srcInput func(ctx context.Context) (string, error)

func (f srcInput) Get(ctx context.Context) (string, error) { return f(ctx) }

func srcTag(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }

func TestAssumeRoleFetch(t *testing.T) {
	clk := newSrcClock()
	srv := newSrcServer(t, clk, ststest.WithRole(ststest.Role{
		ARN: srcRoleARN, MaxSessionDuration: 12 * time.Hour, ExternalID: "ext-7f3a9",
	}))
	src, err := rotator.NewAssumeRole(srcClient(srv, srcBase(), 0), srcRoleARN, rotator.AssumeRoleOptions{
		SessionOptions: rotator.SessionOptions{
			RoleSessionName: "imdsd-alice@laptop",
			Duration:        2 * time.Hour,
			Policy:          srcPolicy,
			PolicyARNs:      []string{srcPolicyARN1, srcPolicyARN2},
		},
		ExternalID:        "ext-7f3a9",
		Tags:              []types.Tag{srcTag("Project", "imdsd"), srcTag("Team", "platform")},
		TransitiveTagKeys: []string{"Project"},
		SourceIdentity:    "alice",
	})
	if err != nil {
		t.Fatalf("NewAssumeRole() = %v", err)
	}
	if n := srv.Stats("").Calls; n != 0 {
		t.Fatalf("NewAssumeRole made %d STS calls, want none", n)
	}
	for i := range 3 {
		got, err := src.Fetch(t.Context())
		if err != nil {
			t.Fatalf("Fetch() #%d = %v, want credentials", i, err)
		}
		is := srcLastIssued(t, srv)
		if diff := cmp.Diff(srcWant(is, "AssumeRole", srcRoleARN), got); diff != "" {
			t.Errorf("Fetch() #%d mismatch (-want +got):\n%s", i, diff)
		}
		if want := clk.Now().Add(2 * time.Hour); !got.Expires.Equal(want) {
			t.Errorf("Fetch() #%d expires %v, want %v (DurationSeconds honoured)", i, got.Expires, want)
		}
		clk.Advance(time.Hour)
	}
	if n := len(srv.Issued()); n != 3 {
		t.Errorf("Issued() has %d sets, want 3 (one per Fetch)", n)
	}

	want := srcParams("AssumeRole",
		"RoleArn", srcRoleARN,
		"RoleSessionName", "imdsd-alice@laptop",
		"DurationSeconds", "7200",
		"ExternalId", "ext-7f3a9",
		"Policy", srcPolicy,
		"PolicyArns.member.1.arn", srcPolicyARN1,
		"PolicyArns.member.2.arn", srcPolicyARN2,
		"Tags.member.1.Key", "Project",
		"Tags.member.1.Value", "imdsd",
		"Tags.member.2.Key", "Team",
		"Tags.member.2.Value", "platform",
		"TransitiveTagKeys.member.1", "Project",
		"SourceIdentity", "alice",
	)
	for i, r := range srv.Requests() {
		if diff := cmp.Diff(want, r.Params); diff != "" {
			t.Errorf("request %d parameters mismatch (-want +got):\n%s", i, diff)
		}
		if r.AccessKeyID != srcAKID || r.Status != http.StatusOK {
			t.Errorf("request %d signed by %q answered %d, want %q and 200", i, r.AccessKeyID, r.Status, srcAKID)
		}
	}
}

// Only the parameters given are sent; STS applies its defaults.
func TestAssumeRoleMinimal(t *testing.T) {
	clk := newSrcClock()
	srv := newSrcServer(t, clk)
	src, err := rotator.NewAssumeRole(srcClient(srv, srcBase(), 0), srcRoleARN, rotator.AssumeRoleOptions{
		SessionOptions: rotator.SessionOptions{RoleSessionName: "imdsd"},
	})
	if err != nil {
		t.Fatalf("NewAssumeRole() = %v", err)
	}
	got, err := src.Fetch(t.Context())
	if err != nil {
		t.Fatalf("Fetch() = %v, want credentials", err)
	}
	if diff := cmp.Diff(srcWant(srcLastIssued(t, srv), "AssumeRole", srcRoleARN), got); diff != "" {
		t.Errorf("Fetch() mismatch (-want +got):\n%s", diff)
	}
	if want := clk.Now().Add(time.Hour); !got.Expires.Equal(want) {
		t.Errorf("Fetch() expires %v, want %v (STS default 1h)", got.Expires, want)
	}
	want := srcParams("AssumeRole", "RoleArn", srcRoleARN, "RoleSessionName", "imdsd")
	if diff := cmp.Diff(want, srv.Requests()[0].Params); diff != "" {
		t.Errorf("request parameters mismatch (-want +got):\n%s", diff)
	}
}

// RoleARN is the configured role, path included, although the assumed-role
// ARN STS answers has no path.
func TestAssumeRoleKeepsConfiguredRoleARN(t *testing.T) {
	const withPath = "arn:aws:iam::123456789012:role/service/ci/deployer"
	srv := newSrcServer(t, newSrcClock())
	src, err := rotator.NewAssumeRole(srcClient(srv, srcBase(), 0), withPath, rotator.AssumeRoleOptions{
		SessionOptions: rotator.SessionOptions{RoleSessionName: "imdsd"},
	})
	if err != nil {
		t.Fatalf("NewAssumeRole() = %v", err)
	}
	got, err := src.Fetch(t.Context())
	if err != nil {
		t.Fatalf("Fetch() = %v, want credentials", err)
	}
	is := srcLastIssued(t, srv)
	if is.ARN != "arn:aws:sts::123456789012:assumed-role/deployer/imdsd" {
		t.Fatalf("ststest issued for %q, want the assumed-role ARN", is.ARN)
	}
	if got.RoleARN != withPath || got.AccountID != srcAccount {
		t.Errorf("Fetch() RoleARN, AccountID = %q, %q, want %q, %q", got.RoleARN, got.AccountID, withPath, srcAccount)
	}
}

func TestAssumeRoleSTSErrors(t *testing.T) {
	tests := []struct {
		name    string
		role    ststest.Role
		opts    rotator.AssumeRoleOptions
		code    string
		message string
	}{{
		name:    "wrong external ID",
		role:    ststest.Role{ARN: srcRoleARN, ExternalID: "ext-expected"},
		opts:    rotator.AssumeRoleOptions{ExternalID: "ext-other"},
		code:    "AccessDenied",
		message: "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/app",
	}, {
		name:    "external ID required but not configured",
		role:    ststest.Role{ARN: srcRoleARN, ExternalID: "ext-expected"},
		code:    "AccessDenied",
		message: "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/app",
	}, {
		name:    "duration above the role maximum",
		role:    ststest.Role{ARN: srcRoleARN, MaxSessionDuration: 2 * time.Hour},
		opts:    rotator.AssumeRoleOptions{SessionOptions: rotator.SessionOptions{Duration: 3 * time.Hour}},
		code:    "ValidationError",
		message: "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
	}, {
		name:    "role requires MFA",
		role:    ststest.Role{ARN: srcRoleARN, RequireMFA: true},
		code:    "AccessDenied",
		message: "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/app",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSrcServer(t, newSrcClock(), ststest.WithRole(tc.role))
			o := tc.opts
			o.RoleSessionName = "imdsd"
			src, err := rotator.NewAssumeRole(srcClient(srv, srcBase(), 1), srcRoleARN, o)
			if err != nil {
				t.Fatalf("NewAssumeRole() = %v", err)
			}
			got, err := src.Fetch(t.Context())
			if err == nil {
				t.Fatalf("Fetch() = %v, want %s", got, tc.code)
			}
			api := srcAPIError(t, err)
			if api.ErrorCode() != tc.code || api.ErrorMessage() != tc.message {
				t.Errorf("Fetch() = %s: %q, want %s: %q", api.ErrorCode(), api.ErrorMessage(), tc.code, tc.message)
			}
			if c := rotator.Classify(err); c != rotator.ClassPermanent {
				t.Errorf("Classify(%v) = %v, want permanent", err, c)
			}
			if c := rotator.ErrorCode(err); c != tc.code {
				t.Errorf("ErrorCode(%v) = %q, want %q", err, c, tc.code)
			}
			if !strings.HasPrefix(err.Error(), "assume role "+srcRoleARN+": ") {
				t.Errorf("Fetch() = %q, want it to name the role", err)
			}
			if got.HasKeys() || len(srv.Issued()) != 0 {
				t.Errorf("Fetch() = %v with %d sets issued, want nothing", got, len(srv.Issued()))
			}
		})
	}
}

func TestNewAssumeRoleInvalid(t *testing.T) {
	tests := []struct {
		name    string
		roleARN string
		opts    rotator.AssumeRoleOptions
		want    string
	}{{
		name:    "role ARN",
		roleARN: "imdsd",
		opts:    rotator.AssumeRoleOptions{SessionOptions: rotator.SessionOptions{RoleSessionName: "imdsd"}},
		want:    `role_arn: an IAM role ARN such as arn:aws:iam::123456789012:role/NAME (got "imdsd")`,
	}, {
		name:    "session name",
		roleARN: srcRoleARN,
		opts:    rotator.AssumeRoleOptions{SessionOptions: rotator.SessionOptions{RoleSessionName: "a"}},
		want:    `role_session_name: 2..64 characters of [\w+=,.@-] (got "a")`,
	}, {
		name:    "no session name",
		roleARN: srcRoleARN,
		want:    "role_session_name: required",
	}, {
		name:    "several at once",
		roleARN: "imdsd",
		opts: rotator.AssumeRoleOptions{
			SessionOptions: rotator.SessionOptions{RoleSessionName: "a", Duration: 10 * time.Minute},
			ExternalID:     "x",
		},
		want: "" +
			`role_arn: an IAM role ARN such as arn:aws:iam::123456789012:role/NAME (got "imdsd")` + "\n" +
			`role_session_name: 2..64 characters of [\w+=,.@-] (got "a")` + "\n" +
			`duration: 15m..12h for AssumeRole (got "10m0s")` + "\n" +
			`external_id: 2..1224 characters of [\w+=,.@:/-] (got "x")`,
	}, {
		name:    "MFA serial without a code source",
		roleARN: srcRoleARN,
		opts: rotator.AssumeRoleOptions{
			SessionOptions: rotator.SessionOptions{RoleSessionName: "imdsd"},
			MFA:            rotator.MFAOptions{Serial: srcMFASerial},
		},
		want: "mfa_serial arn:aws:iam::123456789012:mfa/alice: no MFA code source configured; set mfa_command",
	}, {
		name:    "MFA serial without a client",
		roleARN: srcRoleARN,
		opts: rotator.AssumeRoleOptions{
			SessionOptions: rotator.SessionOptions{RoleSessionName: "imdsd"},
			MFA:            rotator.MFAOptions{Serial: srcMFASerial, Code: srcInput(func(context.Context) (string, error) { return "123456", nil })},
		},
		want: "mfa_serial arn:aws:iam::123456789012:mfa/alice: no client for the MFA session",
	}, {
		name:    "MFA session longer than 36h",
		roleARN: srcRoleARN,
		opts: rotator.AssumeRoleOptions{
			SessionOptions: rotator.SessionOptions{RoleSessionName: "imdsd"},
			MFA: rotator.MFAOptions{
				Serial:          srcMFASerial,
				Code:            srcInput(func(context.Context) (string, error) { return "123456", nil }),
				NewClient:       func(aws.CredentialsProvider) rotator.STSClient { return nil },
				SessionDuration: 48 * time.Hour,
			},
		},
		want: `duration: 15m..36h for GetSessionToken (got "48h0m0s")`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSrcServer(t, newSrcClock())
			src, err := rotator.NewAssumeRole(srcClient(srv, srcBase(), 1), tc.roleARN, tc.opts)
			if err == nil {
				t.Fatalf("NewAssumeRole() = %v, nil, want error %q", src, tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("NewAssumeRole() error:\n%s\nwant:\n%s", err, tc.want)
			}
			if n := srv.Stats("").Calls; n != 0 {
				t.Errorf("NewAssumeRole made %d STS calls, want none", n)
			}
		})
	}
}

// A duration past 2^31 seconds wraps around in SessionOptions.durationSeconds
// (int32(d / time.Second)): 2^32 s + 1h (1193047h28m16s) is sent as
// DurationSeconds=3600 instead of being refused as longer than 12h.
func TestNewAssumeRoleDurationOverflow(t *testing.T) {
	srv := newSrcServer(t, newSrcClock())
	d := (1<<32 + 3600) * time.Second
	src, err := rotator.NewAssumeRole(srcClient(srv, srcBase(), 1), srcRoleARN, rotator.AssumeRoleOptions{
		SessionOptions: rotator.SessionOptions{RoleSessionName: "imdsd", Duration: d},
	})
	if err != nil {
		return // refused, as it should be
	}
	_, err = src.Fetch(t.Context())
	t.Errorf("NewAssumeRole(Duration: %v) = nil error, want duration: 15m..12h; Fetch() = %v sending DurationSeconds=%s",
		d, err, srv.Requests()[0].Params.Get("DurationSeconds"))
}

// srcMFASetup is a role that requires MFA, an MFA device accepting codes of
// valid, and an assume-role source holding an MFA session of 36h.
type srcMFASetup struct {
	srv    *ststest.Server
	srvClk *srcClock // the fake STS's clock
	mfaClk *srcClock // MFAOptions.Now
	codes  *srcCodes
	src    *rotator.AssumeRole
}

func newSrcMFASetup(t *testing.T, valid []string, codes *srcCodes) *srcMFASetup {
	t.Helper()
	s := &srcMFASetup{srvClk: newSrcClock(), codes: codes}
	s.mfaClk = &srcClock{t: s.srvClk.Now()}
	s.srv = newSrcServer(t, s.srvClk,
		ststest.WithRole(ststest.Role{ARN: srcRoleARN, RequireMFA: true}),
		ststest.WithMFADevice(srcMFASerial, func(code string) bool {
			for _, v := range valid {
				if code == v {
					return true
				}
			}
			return false
		}),
	)
	newClient := func(p aws.CredentialsProvider) rotator.STSClient { return srcClient(s.srv, p, 1) }
	src, err := rotator.NewAssumeRole(srcClient(s.srv, srcBase(), 1), srcRoleARN, rotator.AssumeRoleOptions{
		SessionOptions: rotator.SessionOptions{RoleSessionName: "imdsd-mfa"},
		MFA: rotator.MFAOptions{
			Serial:          srcMFASerial,
			Code:            srcInput(codes.get),
			NewClient:       newClient,
			SessionDuration: 36 * time.Hour,
			Now:             s.mfaClk.Now,
		},
	})
	if err != nil {
		t.Fatalf("NewAssumeRole() = %v", err)
	}
	s.src = src
	return s
}

// advance moves both clocks.
func (s *srcMFASetup) advance(d time.Duration) {
	s.srvClk.Advance(d)
	s.mfaClk.Advance(d)
}

// fetch fetches and checks the result against what STS issued last, which
// must be an AssumeRole signed by the latest MFA session.
func (s *srcMFASetup) fetch(t *testing.T) {
	t.Helper()
	got, err := s.src.Fetch(t.Context())
	if err != nil {
		t.Fatalf("Fetch() = %v, want credentials", err)
	}
	is := srcLastIssued(t, s.srv)
	if diff := cmp.Diff(srcWant(is, "AssumeRole", srcRoleARN), got); diff != "" {
		t.Errorf("Fetch() mismatch (-want +got):\n%s", diff)
	}
	sess := s.sessions()
	if len(sess) == 0 {
		t.Fatal("no MFA session issued")
	}
	key := sess[len(sess)-1].AccessKeyID
	reqs := s.srv.Requests()
	last := reqs[len(reqs)-1]
	if last.Action != "AssumeRole" || last.AccessKeyID != key {
		t.Errorf("last request %s signed by %q, want AssumeRole signed by the MFA session %q", last.Action, last.AccessKeyID, key)
	}
	if _, ok := last.Params["TokenCode"]; ok {
		t.Errorf("AssumeRole carried TokenCode; the MFA session should stand for it")
	}
}

// sessions returns the MFA sessions issued so far.
func (s *srcMFASetup) sessions() []ststest.Credentials {
	var out []ststest.Credentials
	for _, c := range s.srv.Issued() {
		if c.Action == "GetSessionToken" {
			out = append(out, c)
		}
	}
	return out
}

func TestAssumeRoleMFASession(t *testing.T) {
	s := newSrcMFASetup(t, []string{"123456", "654321"}, &srcCodes{codes: []string{"123456", "654321"}})

	// 20 rotations, 1h apart: one code, one session.
	s.fetch(t)
	sess := s.sessions()
	if len(sess) != 1 {
		t.Fatalf("%d GetSessionToken sessions after the first Fetch, want 1", len(sess))
	}
	key1 := sess[0].AccessKeyID
	if want := s.srvClk.Now().Add(36 * time.Hour); !sess[0].Expiration.Equal(want) {
		t.Errorf("MFA session expires %v, want %v", sess[0].Expiration, want)
	}
	for range 19 {
		s.advance(time.Hour)
		s.fetch(t)
	}
	if n := s.codes.Asked(); n != 1 {
		t.Errorf("code asked %d times in 20 rotations, want 1", n)
	}
	if n := s.srv.Stats("GetSessionToken").Calls; n != 1 {
		t.Errorf("GetSessionToken called %d times in 20 rotations, want 1", n)
	}
	if n := s.srv.Stats("AssumeRole").Calls; n != 20 {
		t.Errorf("AssumeRole called %d times, want 20", n)
	}
	for i, r := range srcRequests(s.srv, "AssumeRole") {
		if r.AccessKeyID != key1 {
			t.Errorf("AssumeRole %d signed by %q, want the MFA session %q", i, r.AccessKeyID, key1)
		}
	}
	gst := srcRequests(s.srv, "GetSessionToken")
	want := srcParams("GetSessionToken", "SerialNumber", srcMFASerial, "TokenCode", "123456", "DurationSeconds", "129600")
	if diff := cmp.Diff(want, gst[0].Params); diff != "" {
		t.Errorf("GetSessionToken parameters mismatch (-want +got):\n%s", diff)
	}
	if gst[0].AccessKeyID != srcAKID {
		t.Errorf("GetSessionToken signed by %q, want the base key %q", gst[0].AccessKeyID, srcAKID)
	}

	// 6 minutes before the session ends it is still used; with less than
	// 5 minutes left a new code and session are obtained.
	s.advance(sess[0].Expiration.Add(-6 * time.Minute).Sub(s.srvClk.Now()))
	s.fetch(t)
	if n := s.codes.Asked(); n != 1 {
		t.Errorf("code asked %d times with 6m of session left, want 1", n)
	}
	s.advance(2 * time.Minute)
	s.fetch(t)
	sess = s.sessions()
	if len(sess) != 2 || s.codes.Asked() != 2 {
		t.Fatalf("%d sessions, code asked %d times with 4m of session left, want 2 and 2", len(sess), s.codes.Asked())
	}
	reqs := s.srv.Requests()
	if last := reqs[len(reqs)-1]; last.AccessKeyID != sess[1].AccessKeyID {
		t.Errorf("AssumeRole signed by %q, want the new MFA session %q", last.AccessKeyID, sess[1].AccessKeyID)
	}
	if got := srcRequests(s.srv, "GetSessionToken")[1].Params.Get("TokenCode"); got != "654321" {
		t.Errorf("second GetSessionToken TokenCode = %q, want the new code 654321", got)
	}
	s.advance(time.Hour)
	s.fetch(t)
}

// STS refusing the held session (expired early, revoked) drops it: the
// next Fetch asks for a code again.
func TestAssumeRoleMFASessionRefused(t *testing.T) {
	s := newSrcMFASetup(t, []string{"123456", "654321"}, &srcCodes{codes: []string{"123456", "654321"}})
	s.fetch(t)
	// The server's clock runs ahead of ours: the session has expired
	// there although MFAOptions.Now still sees 36h left.
	s.srvClk.Advance(37 * time.Hour)
	_, err := s.src.Fetch(t.Context())
	if err == nil {
		t.Fatal("Fetch() with a session STS considers expired = nil error, want ExpiredToken")
	}
	if code := srcAPIError(t, err).ErrorCode(); code != "ExpiredToken" {
		t.Errorf("Fetch() = %v, want ExpiredToken", err)
	}
	if n := s.codes.Asked(); n != 1 {
		t.Errorf("code asked %d times, want 1 before the session is dropped", n)
	}
	s.fetch(t)
	sess := s.sessions()
	if len(sess) != 2 || s.codes.Asked() != 2 {
		t.Fatalf("%d sessions, code asked %d times after STS refused the session, want 2 and 2", len(sess), s.codes.Asked())
	}
	reqs := s.srv.Requests()
	if last := reqs[len(reqs)-1]; last.AccessKeyID != sess[1].AccessKeyID {
		t.Errorf("AssumeRole signed by %q, want the new MFA session %q", last.AccessKeyID, sess[1].AccessKeyID)
	}
}

func TestAssumeRoleMFAErrors(t *testing.T) {
	errNoSeed := errors.New("totp: no seed for alice")
	tests := []struct {
		name      string
		codes     *srcCodes
		code      string // upstream error code; "" when STS is never called
		class     rotator.Class
		wrapped   error
		calls     int // STS calls made
		forbidden string
	}{{
		name:      "wrong code",
		codes:     &srcCodes{codes: []string{"987650"}},
		code:      "AccessDenied",
		class:     rotator.ClassPermanent,
		calls:     1,
		forbidden: "987650",
	}, {
		name:      "code not six digits",
		codes:     &srcCodes{codes: []string{"98765"}},
		class:     rotator.ClassPermanent,
		forbidden: "98765",
	}, {
		name:    "code input fails",
		codes:   &srcCodes{err: errNoSeed},
		class:   rotator.ClassPermanent,
		wrapped: errNoSeed,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSrcMFASetup(t, []string{"123456"}, tc.codes)
			for attempt := range 2 {
				got, err := s.src.Fetch(t.Context())
				if err == nil {
					t.Fatalf("Fetch() = %v, want an error", got)
				}
				if c := rotator.Classify(err); c != tc.class {
					t.Errorf("Classify(%v) = %v, want %v", err, c, tc.class)
				}
				if !strings.Contains(err.Error(), srcMFASerial) {
					t.Errorf("Fetch() = %q, want it to name the MFA device", err)
				}
				if tc.forbidden != "" && strings.Contains(err.Error(), tc.forbidden) {
					t.Errorf("Fetch() = %q, shows the MFA code", err)
				}
				if tc.code != "" {
					if c := srcAPIError(t, err).ErrorCode(); c != tc.code {
						t.Errorf("Fetch() = %v, want %s", err, c)
					}
				}
				if tc.wrapped != nil && !errors.Is(err, tc.wrapped) {
					t.Errorf("Fetch() = %v, want it to wrap %v", err, tc.wrapped)
				}
				// A failed attempt keeps nothing: the next asks again.
				if n := s.codes.Asked(); n != attempt+1 {
					t.Errorf("code asked %d times after %d attempts", n, attempt+1)
				}
			}
			if n := s.srv.Stats("").Calls; n != 2*tc.calls {
				t.Errorf("%d STS calls in 2 attempts, want %d", n, 2*tc.calls)
			}
			if n := s.srv.Stats("AssumeRole").Calls; n != 0 {
				t.Errorf("AssumeRole called %d times without an MFA session", n)
			}
		})
	}
}

func TestWebIdentityFetch(t *testing.T) {
	tests := []struct {
		name  string
		creds aws.CredentialsProvider
	}{
		{"no credentials", aws.AnonymousCredentials{}},
		{"nil credentials", nil},
		{"base credentials", srcBase()}, // still unsigned
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newSrcClock()
			srv := newSrcServer(t, clk, ststest.WithRole(ststest.Role{
				ARN: srcRoleARN, MaxSessionDuration: 4 * time.Hour, WebIdentityAudience: srcAudience,
			}))
			path := filepath.Join(t.TempDir(), "token")
			src, err := rotator.NewWebIdentity(srcClient(srv, tc.creds, 0), srcRoleARN, rotator.FileInput(path), rotator.WebIdentityOptions{
				SessionOptions: rotator.SessionOptions{
					RoleSessionName: "imdsd-runner",
					Duration:        2 * time.Hour,
					Policy:          srcPolicy,
					PolicyARNs:      []string{srcPolicyARN1},
				},
			})
			if err != nil {
				t.Fatalf("NewWebIdentity() = %v", err)
			}
			// The file is rewritten between fetches (Kubernetes, CI
			// agents): each Fetch sends what it holds then.
			for i := range 3 {
				tok := srcJWT(fmt.Sprintf("system:serviceaccount:ci:runner-%d", i), srcAudience, clk.Now().Add(time.Hour))
				if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				got, err := src.Fetch(t.Context())
				if err != nil {
					t.Fatalf("Fetch() #%d = %v, want credentials", i, err)
				}
				if diff := cmp.Diff(srcWant(srcLastIssued(t, srv), "AssumeRoleWithWebIdentity", srcRoleARN), got); diff != "" {
					t.Errorf("Fetch() #%d mismatch (-want +got):\n%s", i, diff)
				}
				reqs := srv.Requests()
				want := srcParams("AssumeRoleWithWebIdentity",
					"RoleArn", srcRoleARN,
					"RoleSessionName", "imdsd-runner",
					"WebIdentityToken", tok,
					"DurationSeconds", "7200",
					"Policy", srcPolicy,
					"PolicyArns.member.1.arn", srcPolicyARN1,
				)
				if diff := cmp.Diff(want, reqs[i].Params); diff != "" {
					t.Errorf("request %d parameters mismatch (-want +got):\n%s", i, diff)
				}
				if reqs[i].AccessKeyID != "" {
					t.Errorf("request %d signed by %q, want unsigned", i, reqs[i].AccessKeyID)
				}
				clk.Advance(50 * time.Minute)
			}
			if n := srv.Stats("").Calls; n != 3 {
				t.Errorf("%d STS calls, want 3", n)
			}
		})
	}
}

func TestWebIdentityErrors(t *testing.T) {
	clk := newSrcClock()
	future, past := clk.Now().Add(time.Hour), clk.Now().Add(-time.Minute)
	tests := []struct {
		name     string
		token    *string // nil: no file
		fault    *ststest.Fault
		code     string        // upstream error code; "" when STS is never called
		message  string        // the upstream message, or a part of the error
		class    rotator.Class // ClassOK: not checked (see TestWebIdentityMissingTokenFileIsPermanent)
		notExist bool          // errors.Is(err, fs.ErrNotExist)
	}{{
		name:     "missing file",
		notExist: true,
		message:  "no such file or directory",
	}, {
		name:    "empty file",
		token:   aws.String("\n"),
		message: "is empty",
		class:   rotator.ClassPermanent,
	}, {
		name:    "token too short",
		token:   aws.String("eyJ"),
		message: "web_identity_token: 4..20000 characters (got 3 characters)",
		class:   rotator.ClassPermanent,
	}, {
		name:    "not a JWT",
		token:   aws.String("not-a-jwt-at-all"),
		code:    "InvalidIdentityToken",
		message: "Couldn't parse web identity token.",
		class:   rotator.ClassPermanent,
	}, {
		name:    "wrong audience",
		token:   aws.String(srcJWT("repo:o/r:ref:refs/heads/main", "https://github.com/o", future)),
		code:    "InvalidIdentityToken",
		message: "Incorrect token audience",
		class:   rotator.ClassPermanent,
	}, {
		name:  "expired JWT",
		token: aws.String(srcJWT("repo:o/r:ref:refs/heads/main", srcAudience, past)),
		code:  "ExpiredTokenException",
		message: fmt.Sprintf("Token expired: current date/time %d must be before the expiration date/time %d",
			clk.Now().Unix(), past.Unix()),
		class: rotator.ClassPermanent,
	}, {
		name:    "identity provider unreachable",
		token:   aws.String(srcJWT("repo:o/r:ref:refs/heads/main", srcAudience, future)),
		fault:   &ststest.Fault{Action: "AssumeRoleWithWebIdentity", Code: "IDPCommunicationError"},
		code:    "IDPCommunicationError",
		message: "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements",
		class:   rotator.ClassTransient,
	}, {
		name:    "identity provider rejected the claim",
		token:   aws.String(srcJWT("repo:o/r:ref:refs/heads/main", srcAudience, future)),
		fault:   &ststest.Fault{Action: "AssumeRoleWithWebIdentity", Code: "IDPRejectedClaim"},
		code:    "IDPRejectedClaim",
		message: "The identity provider rejected the claim",
		class:   rotator.ClassPermanent,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSrcServer(t, clk, ststest.WithRole(ststest.Role{ARN: srcRoleARN, WebIdentityAudience: srcAudience}))
			if tc.fault != nil {
				srv.Inject(*tc.fault)
			}
			path := filepath.Join(t.TempDir(), "token")
			if tc.token != nil {
				if err := os.WriteFile(path, []byte(*tc.token), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			src, err := rotator.NewWebIdentity(srcClient(srv, aws.AnonymousCredentials{}, 1), srcRoleARN, rotator.FileInput(path), rotator.WebIdentityOptions{
				SessionOptions: rotator.SessionOptions{RoleSessionName: "imdsd-runner"},
			})
			if err != nil {
				t.Fatalf("NewWebIdentity() = %v", err)
			}
			got, err := src.Fetch(t.Context())
			if err == nil {
				t.Fatalf("Fetch() = %v, want an error", got)
			}
			if tc.code != "" {
				api := srcAPIError(t, err)
				if api.ErrorCode() != tc.code || api.ErrorMessage() != tc.message {
					t.Errorf("Fetch() = %s: %q, want %s: %q", api.ErrorCode(), api.ErrorMessage(), tc.code, tc.message)
				}
				if c := rotator.ErrorCode(err); c != tc.code {
					t.Errorf("ErrorCode(%v) = %q, want %q", err, c, tc.code)
				}
				if n := srv.Stats("AssumeRoleWithWebIdentity").Calls; n != 1 {
					t.Errorf("%d AssumeRoleWithWebIdentity calls, want 1 (no retries configured)", n)
				}
			} else {
				if !strings.Contains(err.Error(), tc.message) {
					t.Errorf("Fetch() = %q, want it to contain %q", err, tc.message)
				}
				if n := srv.Stats("").Calls; n != 0 {
					t.Errorf("%d STS calls without a usable token, want none", n)
				}
			}
			if tc.class != rotator.ClassOK {
				if c := rotator.Classify(err); c != tc.class {
					t.Errorf("Classify(%v) = %v, want %v", err, c, tc.class)
				}
			}
			if tc.notExist && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Fetch() = %v, want errors.Is fs.ErrNotExist", err)
			}
			if tc.token != nil && len(*tc.token) > 4 && strings.Contains(err.Error(), *tc.token) {
				t.Errorf("Fetch() = %q, shows the token", err)
			}
		})
	}
}

// A token file that is missing is a configuration problem like an empty
// one: errInput documents "permanent until a person fixes it, so it is
// retried slowly". Classify sees the syscall.Errno under the error as a
// net.Error (Errno has Timeout and Temporary methods) and calls it
// transient, and ErrorCode reports ServiceUnavailable to clients.
func TestWebIdentityMissingTokenFileIsPermanent(t *testing.T) {
	srv := newSrcServer(t, newSrcClock())
	path := filepath.Join(t.TempDir(), "missing")
	src, err := rotator.NewWebIdentity(srcClient(srv, aws.AnonymousCredentials{}, 1), srcRoleARN, rotator.FileInput(path), rotator.WebIdentityOptions{
		SessionOptions: rotator.SessionOptions{RoleSessionName: "imdsd-runner"},
	})
	if err != nil {
		t.Fatalf("NewWebIdentity() = %v", err)
	}
	_, err = src.Fetch(t.Context())
	if c := rotator.Classify(err); c != rotator.ClassPermanent {
		t.Errorf("Classify(%v) = %v, want permanent (an input a person must fix)", err, c)
	}
	if c := rotator.ErrorCode(err); c != "CredentialSourceError" {
		t.Errorf("ErrorCode(%v) = %q, want CredentialSourceError", err, c)
	}
}

// OAuth 2.0 providers are named with ProviderId.
func TestWebIdentityProviderID(t *testing.T) {
	clk := newSrcClock()
	srv := newSrcServer(t, clk)
	tok := srcJWT("amzn1.account.AF6RHO7KZU5XRVQJGXK6HB56KR2A", "amzn1.application-oa2-client.1", clk.Now().Add(time.Hour))
	in := srcInput(func(context.Context) (string, error) { return tok, nil })
	src, err := rotator.NewWebIdentity(srcClient(srv, nil, 0), srcRoleARN, in, rotator.WebIdentityOptions{
		SessionOptions: rotator.SessionOptions{RoleSessionName: "web-app"},
		ProviderID:     "www.amazon.com",
	})
	if err != nil {
		t.Fatalf("NewWebIdentity() = %v", err)
	}
	got, err := src.Fetch(t.Context())
	if err != nil {
		t.Fatalf("Fetch() = %v, want credentials", err)
	}
	if diff := cmp.Diff(srcWant(srcLastIssued(t, srv), "AssumeRoleWithWebIdentity", srcRoleARN), got); diff != "" {
		t.Errorf("Fetch() mismatch (-want +got):\n%s", diff)
	}
	want := srcParams("AssumeRoleWithWebIdentity",
		"RoleArn", srcRoleARN, "RoleSessionName", "web-app", "WebIdentityToken", tok, "ProviderId", "www.amazon.com")
	if diff := cmp.Diff(want, srv.Requests()[0].Params); diff != "" {
		t.Errorf("request parameters mismatch (-want +got):\n%s", diff)
	}
}

func TestNewWebIdentityInvalid(t *testing.T) {
	srv := newSrcServer(t, newSrcClock())
	c := srcClient(srv, aws.AnonymousCredentials{}, 1)
	_, err := rotator.NewWebIdentity(c, srcRoleARN, nil, rotator.WebIdentityOptions{SessionOptions: rotator.SessionOptions{RoleSessionName: "imdsd"}})
	if want := "web identity: no token source; set web_identity_token_file, web_identity_token_command or web_identity_ci"; err == nil || err.Error() != want {
		t.Errorf("NewWebIdentity(no token) = %v, want %q", err, want)
	}
	_, err = rotator.NewWebIdentity(c, srcRoleARN, rotator.FileInput("/nonexistent"), rotator.WebIdentityOptions{
		SessionOptions: rotator.SessionOptions{RoleSessionName: "imdsd", Duration: 13 * time.Hour},
	})
	if want := `duration: 15m..12h for AssumeRoleWithWebIdentity (got "13h0m0s")`; err == nil || err.Error() != want {
		t.Errorf("NewWebIdentity(13h) = %v, want %q", err, want)
	}
}

func TestSAMLFetch(t *testing.T) {
	clk := newSrcClock()
	assertion := srcSAML("alice@example.com", clk.Now().Add(5*time.Minute))
	file := filepath.Join(t.TempDir(), "assertion")
	if err := os.WriteFile(file, []byte(assertion+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		input rotator.Input
		sh    bool
	}{
		{"command", rotator.CommandInput("printf %s "+assertion, rotator.CommandOptions{}), true},
		{"file", rotator.FileInput(file), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := exec.LookPath("sh"); tc.sh && err != nil {
				t.Skip("no sh on PATH")
			}
			srv := newSrcServer(t, clk, ststest.WithRole(ststest.Role{ARN: srcRoleARN, MaxSessionDuration: 8 * time.Hour}))
			src, err := rotator.NewSAML(srcClient(srv, srcBase(), 0), srcRoleARN, srcSAMLProvider, tc.input, rotator.SessionOptions{
				Duration:   4 * time.Hour,
				Policy:     srcPolicy,
				PolicyARNs: []string{srcPolicyARN1, srcPolicyARN2},
			})
			if err != nil {
				t.Fatalf("NewSAML() = %v", err)
			}
			for i := range 2 {
				got, err := src.Fetch(t.Context())
				if err != nil {
					t.Fatalf("Fetch() #%d = %v, want credentials", i, err)
				}
				is := srcLastIssued(t, srv)
				if diff := cmp.Diff(srcWant(is, "AssumeRoleWithSAML", srcRoleARN), got); diff != "" {
					t.Errorf("Fetch() #%d mismatch (-want +got):\n%s", i, diff)
				}
				if want := "arn:aws:sts::123456789012:assumed-role/app/alice@example.com"; is.ARN != want {
					t.Errorf("issued for %q, want %q (session name from the assertion)", is.ARN, want)
				}
			}
			want := srcParams("AssumeRoleWithSAML",
				"RoleArn", srcRoleARN,
				"PrincipalArn", srcSAMLProvider,
				"SAMLAssertion", assertion,
				"DurationSeconds", "14400",
				"Policy", srcPolicy,
				"PolicyArns.member.1.arn", srcPolicyARN1,
				"PolicyArns.member.2.arn", srcPolicyARN2,
			)
			for i, r := range srv.Requests() {
				if diff := cmp.Diff(want, r.Params); diff != "" {
					t.Errorf("request %d parameters mismatch (-want +got):\n%s", i, diff)
				}
				if r.AccessKeyID != "" {
					t.Errorf("request %d signed by %q, want unsigned", i, r.AccessKeyID)
				}
			}
		})
	}
}

func TestSAMLErrors(t *testing.T) {
	clk := newSrcClock()
	tests := []struct {
		name      string
		assertion string
		code      string
	}{
		{"expired assertion", srcSAML("alice", clk.Now()), "ExpiredTokenException"},
		{"not a SAML response", base64.StdEncoding.EncodeToString([]byte("<html>login page</html>")), "InvalidIdentityToken"},
		{"no session name", srcSAML("", clk.Now().Add(time.Minute)), "InvalidIdentityToken"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSrcServer(t, clk)
			in := srcInput(func(context.Context) (string, error) { return tc.assertion, nil })
			src, err := rotator.NewSAML(srcClient(srv, aws.AnonymousCredentials{}, 1), srcRoleARN, srcSAMLProvider, in, rotator.SessionOptions{})
			if err != nil {
				t.Fatalf("NewSAML() = %v", err)
			}
			_, err = src.Fetch(t.Context())
			if code := srcAPIError(t, err).ErrorCode(); code != tc.code {
				t.Errorf("Fetch() = %v, want %s", err, tc.code)
			}
			if c := rotator.Classify(err); c != rotator.ClassPermanent {
				t.Errorf("Classify(%v) = %v, want permanent", err, c)
			}
			if strings.Contains(err.Error(), tc.assertion) {
				t.Errorf("Fetch() = %q, shows the assertion", err)
			}
		})
	}
}

func TestNewSAMLInvalid(t *testing.T) {
	srv := newSrcServer(t, newSrcClock())
	c := srcClient(srv, aws.AnonymousCredentials{}, 1)
	in := rotator.FileInput("/nonexistent")
	_, err := rotator.NewSAML(c, srcRoleARN, "arn:aws:iam::123456789012:oidc-provider/x", in, rotator.SessionOptions{})
	if want := "" +
		`saml_principal_arn: an IAM SAML provider ARN such as arn:aws:iam::123456789012:saml-provider/NAME (got "arn:aws:iam::123456789012:oidc-provider/x")`; err == nil || err.Error() != want {
		t.Errorf("NewSAML(bad principal) = %v, want %q", err, want)
	}
	_, err = rotator.NewSAML(c, srcRoleARN, srcSAMLProvider, nil, rotator.SessionOptions{})
	if want := "saml: no assertion source; set saml_assertion_file or saml_assertion_command"; err == nil || err.Error() != want {
		t.Errorf("NewSAML(no assertion) = %v, want %q", err, want)
	}
}

// RoleARN of the session-token and federation-token sources is not a role:
// see the report; it is left out of these comparisons.
var srcIgnoreRoleARN = cmpopts.IgnoreFields(rotator.Credentials{}, "RoleARN")

func TestSessionTokenFetch(t *testing.T) {
	tests := []struct {
		name     string
		duration time.Duration
		mfa      bool
		params   []string // besides Action, Version and the MFA ones
	}{
		{"default duration", 0, false, nil},
		{"24h", 24 * time.Hour, false, []string{"DurationSeconds", "86400"}},
		{"MFA", 36 * time.Hour, true, []string{"DurationSeconds", "129600"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newSrcClock()
			codes := &srcCodes{codes: []string{"111111", "222222", "333333"}}
			srv := newSrcServer(t, clk, ststest.WithMFADevice(srcMFASerial, func(code string) bool { return code[0] == code[5] }))
			var mfa rotator.MFAOptions
			if tc.mfa {
				mfa = rotator.MFAOptions{Serial: srcMFASerial, Code: srcInput(codes.get)}
			}
			src, err := rotator.NewSessionToken(srcClient(srv, srcBase(), 0), tc.duration, mfa)
			if err != nil {
				t.Fatalf("NewSessionToken() = %v", err)
			}
			for i := range 3 {
				got, err := src.Fetch(t.Context())
				if err != nil {
					t.Fatalf("Fetch() #%d = %v, want credentials", i, err)
				}
				is := srcLastIssued(t, srv)
				if diff := cmp.Diff(srcWant(is, "GetSessionToken", ""), got, srcIgnoreRoleARN); diff != "" {
					t.Errorf("Fetch() #%d mismatch (-want +got):\n%s", i, diff)
				}
				wantLife := tc.duration
				if wantLife == 0 {
					wantLife = 12 * time.Hour
				}
				if want := clk.Now().Add(wantLife); !got.Expires.Equal(want) {
					t.Errorf("Fetch() #%d expires %v, want %v", i, got.Expires, want)
				}
				kv := tc.params
				if tc.mfa {
					kv = append(kv, "SerialNumber", srcMFASerial, "TokenCode", codes.codes[i])
				}
				gst := srcRequests(srv, "GetSessionToken")
				if diff := cmp.Diff(srcParams("GetSessionToken", kv...), gst[i].Params); diff != "" {
					t.Errorf("request %d parameters mismatch (-want +got):\n%s", i, diff)
				}
				if gst[i].AccessKeyID != srcAKID {
					t.Errorf("request %d signed by %q, want %q", i, gst[i].AccessKeyID, srcAKID)
				}
				clk.Advance(time.Hour)
			}
			wantAsked := 0
			if tc.mfa {
				wantAsked = 3 // every session needs a fresh code
			}
			if n := codes.Asked(); n != wantAsked {
				t.Errorf("code asked %d times in 3 fetches, want %d", n, wantAsked)
			}
			if n := srv.Stats("GetCallerIdentity").Calls; n != 1 {
				t.Errorf("GetCallerIdentity called %d times in 3 fetches, want 1 (cached)", n)
			}
		})
	}
}

// A failed GetCallerIdentity does not fail the fetch; it is asked again on
// the next one.
func TestSessionTokenCallerIdentityRetried(t *testing.T) {
	srv := newSrcServer(t, newSrcClock())
	srv.Fail("GetCallerIdentity", "AccessDenied", 0, 1)
	src, err := rotator.NewSessionToken(srcClient(srv, srcBase(), 1), 0, rotator.MFAOptions{})
	if err != nil {
		t.Fatalf("NewSessionToken() = %v", err)
	}
	for i, wantAccount := range []string{"", srcAccount, srcAccount} {
		got, err := src.Fetch(t.Context())
		if err != nil {
			t.Fatalf("Fetch() #%d = %v, want credentials", i, err)
		}
		if got.AccountID != wantAccount {
			t.Errorf("Fetch() #%d AccountID = %q, want %q", i, got.AccountID, wantAccount)
		}
	}
	if n := srv.Stats("GetCallerIdentity").Calls; n != 2 {
		t.Errorf("GetCallerIdentity called %d times, want 2 (once failed, once cached)", n)
	}
}

func TestSessionTokenErrors(t *testing.T) {
	t.Run("session key as base", func(t *testing.T) {
		srv := newSrcServer(t, newSrcClock())
		out, err := srcClient(srv, srcBase(), 1).GetSessionToken(t.Context(), &sts.GetSessionTokenInput{})
		if err != nil {
			t.Fatalf("GetSessionToken() = %v", err)
		}
		c := out.Credentials
		session := credentials.NewStaticCredentialsProvider(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken)
		src, err := rotator.NewSessionToken(srcClient(srv, session, 1), 0, rotator.MFAOptions{})
		if err != nil {
			t.Fatalf("NewSessionToken() = %v", err)
		}
		got, err := src.Fetch(t.Context())
		if err == nil {
			t.Fatalf("Fetch() = %v, want AccessDenied", got)
		}
		api := srcAPIError(t, err)
		if api.ErrorCode() != "AccessDenied" || api.ErrorMessage() != "Cannot call GetSessionToken with session credentials" {
			t.Errorf("Fetch() = %v, want AccessDenied: Cannot call GetSessionToken with session credentials", err)
		}
		if c := rotator.Classify(err); c != rotator.ClassPermanent {
			t.Errorf("Classify(%v) = %v, want permanent", err, c)
		}
		if !strings.HasPrefix(err.Error(), "get session token: ") {
			t.Errorf("Fetch() = %q, want it to name the call", err)
		}
		if n := len(srv.Issued()); n != 1 {
			t.Errorf("%d sets issued, want only the session used as base", n)
		}
	})
	t.Run("wrong MFA code", func(t *testing.T) {
		srv := newSrcServer(t, newSrcClock(), ststest.WithMFADevice(srcMFASerial, func(code string) bool { return code == "123456" }))
		src, err := rotator.NewSessionToken(srcClient(srv, srcBase(), 1), 0, rotator.MFAOptions{
			Serial: srcMFASerial,
			Code:   srcInput(func(context.Context) (string, error) { return "987650", nil }),
		})
		if err != nil {
			t.Fatalf("NewSessionToken() = %v", err)
		}
		_, err = src.Fetch(t.Context())
		if code := srcAPIError(t, err).ErrorCode(); code != "AccessDenied" || rotator.Classify(err) != rotator.ClassPermanent {
			t.Errorf("Fetch() = %v (%v), want a permanent AccessDenied", err, rotator.Classify(err))
		}
		if strings.Contains(err.Error(), "987650") {
			t.Errorf("Fetch() = %q, shows the MFA code", err)
		}
	})
	t.Run("MFA serial without a code source", func(t *testing.T) {
		_, err := rotator.NewSessionToken(nil, 0, rotator.MFAOptions{Serial: srcMFASerial})
		if want := "mfa_serial arn:aws:iam::123456789012:mfa/alice: no MFA code source configured; set mfa_command"; err == nil || err.Error() != want {
			t.Errorf("NewSessionToken() = %v, want %q", err, want)
		}
	})
	t.Run("duration over 36h", func(t *testing.T) {
		_, err := rotator.NewSessionToken(nil, 37*time.Hour, rotator.MFAOptions{})
		if want := `duration: 15m..36h for GetSessionToken (got "37h0m0s")`; err == nil || err.Error() != want {
			t.Errorf("NewSessionToken() = %v, want %q", err, want)
		}
	})
}

func TestFederationTokenFetch(t *testing.T) {
	clk := newSrcClock()
	srv := newSrcServer(t, clk)
	src, err := rotator.NewFederationToken(srcClient(srv, srcBase(), 0), "ci-deploy", rotator.SessionOptions{
		RoleSessionName: "ignored-here",
		Duration:        3 * time.Hour,
		Policy:          srcPolicy,
		PolicyARNs:      []string{srcPolicyARN1},
	}, []types.Tag{srcTag("Project", "imdsd"), srcTag("CostCenter", "42")})
	if err != nil {
		t.Fatalf("NewFederationToken() = %v", err)
	}
	got, err := src.Fetch(t.Context())
	if err != nil {
		t.Fatalf("Fetch() = %v, want credentials", err)
	}
	is := srcLastIssued(t, srv)
	if want := "arn:aws:sts::123456789012:federated-user/ci-deploy"; is.ARN != want {
		t.Fatalf("issued for %q, want %q", is.ARN, want)
	}
	if diff := cmp.Diff(srcWant(is, "GetFederationToken", ""), got, srcIgnoreRoleARN); diff != "" {
		t.Errorf("Fetch() mismatch (-want +got):\n%s", diff)
	}
	if want := clk.Now().Add(3 * time.Hour); !got.Expires.Equal(want) {
		t.Errorf("Fetch() expires %v, want %v", got.Expires, want)
	}
	want := srcParams("GetFederationToken",
		"Name", "ci-deploy",
		"DurationSeconds", "10800",
		"Policy", srcPolicy,
		"PolicyArns.member.1.arn", srcPolicyARN1,
		"Tags.member.1.Key", "Project",
		"Tags.member.1.Value", "imdsd",
		"Tags.member.2.Key", "CostCenter",
		"Tags.member.2.Value", "42",
	)
	r := srv.Requests()[0]
	if diff := cmp.Diff(want, r.Params); diff != "" {
		t.Errorf("request parameters mismatch (-want +got):\n%s", diff)
	}
	if r.AccessKeyID != srcAKID {
		t.Errorf("request signed by %q, want %q", r.AccessKeyID, srcAKID)
	}
	if n := srv.Stats("GetCallerIdentity").Calls; n != 0 {
		t.Errorf("GetCallerIdentity called %d times; the answer names the federated user", n)
	}
}

func TestNewFederationTokenInvalid(t *testing.T) {
	tests := []struct {
		name, fedName string
		opts          rotator.SessionOptions
		want          string
	}{{
		name:    "name too long",
		fedName: strings.Repeat("n", 33),
		opts:    rotator.SessionOptions{PolicyARNs: []string{srcPolicyARN1}},
		want:    `federation_name: 2..32 characters of [\w+=,.@-] (got "` + strings.Repeat("n", 33) + `")`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := rotator.NewFederationToken(nil, tc.fedName, tc.opts, nil)
			if err == nil || err.Error() != tc.want {
				t.Errorf("NewFederationToken() = %v, %v, want error %q", src, err, tc.want)
			}
		})
	}
}

// Without a session policy STS grants a session with no permissions of its
// own, which resource-based policies naming the federated user can still
// let in: the source is built, and warns.
func TestFederationTokenWithoutPolicy(t *testing.T) {
	clk := newSrcClock()
	srv := newSrcServer(t, clk)
	src, err := rotator.NewFederationToken(srcClient(srv, srcBase(), 0), "ci-deploy", rotator.SessionOptions{}, nil)
	if err != nil {
		t.Fatalf("NewFederationToken() without a policy = %v, want a source", err)
	}
	want := []string{"federation-token without policy_file or policy_arn: the session of federated user ci-deploy " +
		"has no permissions of its own; it can reach only resources whose resource-based policies name " +
		"arn:aws:sts::ACCOUNT:federated-user/ci-deploy (add a session policy to use the caller's permissions)"}
	if diff := cmp.Diff(want, src.Warnings()); diff != "" {
		t.Errorf("Warnings() (-want +got):\n%s", diff)
	}
	if _, err := src.Fetch(t.Context()); err != nil {
		t.Fatalf("Fetch() = %v, want credentials", err)
	}
	if diff := cmp.Diff(srcParams("GetFederationToken", "Name", "ci-deploy"), srv.Requests()[0].Params); diff != "" {
		t.Errorf("request parameters mismatch (-want +got):\n%s", diff)
	}
	withPolicy, err := rotator.NewFederationToken(nil, "ci-deploy", rotator.SessionOptions{PolicyARNs: []string{srcPolicyARN1}}, nil)
	if err != nil || withPolicy.Warnings() != nil {
		t.Errorf("with a policy ARN: %v, Warnings() = %q, want none", err, withPolicy.Warnings())
	}
}

// srcProvider is a credentials provider with an Invalidate method, like
// aws.CredentialsCache, that records the calls it gets.
type srcProvider struct {
	mu    sync.Mutex
	calls []string
	exp   time.Time
}

func (p *srcProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, "Retrieve")
	n := strconv.Itoa(len(p.calls))
	return aws.Credentials{
		AccessKeyID: "ASIAPROFILE" + n, SecretAccessKey: "secret" + n, SessionToken: "token" + n,
		Source: "test", CanExpire: true, Expires: p.exp,
	}, nil
}

func (p *srcProvider) Invalidate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, "Invalidate")
}

func TestProfileInvalidatesBeforeRetrieve(t *testing.T) {
	clk := newSrcClock()
	srv := newSrcServer(t, clk)
	p := &srcProvider{exp: clk.Now().Add(45 * time.Minute)}
	src := rotator.NewProfile("ci", "", p, srcClient(srv, srcBase(), 0), clk.Now)
	for i := range 3 {
		got, err := src.Fetch(t.Context())
		if err != nil {
			t.Fatalf("Fetch() #%d = %v, want credentials", i, err)
		}
		n := strconv.Itoa(2 * (i + 1))
		want := rotator.Credentials{
			Credentials: aws.Credentials{
				AccessKeyID: "ASIAPROFILE" + n, SecretAccessKey: "secret" + n, SessionToken: "token" + n,
				Source: "test", CanExpire: true, Expires: p.exp, AccountID: srcAccount,
			},
		}
		if diff := cmp.Diff(want, got, srcIgnoreRoleARN); diff != "" {
			t.Errorf("Fetch() #%d mismatch (-want +got):\n%s", i, diff)
		}
	}
	want := []string{"Invalidate", "Retrieve", "Invalidate", "Retrieve", "Invalidate", "Retrieve"}
	if diff := cmp.Diff(want, p.calls); diff != "" {
		t.Errorf("provider calls mismatch (-want +got):\n%s", diff)
	}
	if n := srv.Stats("GetCallerIdentity").Calls; n != 1 {
		t.Errorf("GetCallerIdentity called %d times, want 1", n)
	}
}

// A profile that assumes a role (role_arn + source_profile) resolves to an
// aws.CredentialsCache over stscreds: every Fetch gets a new set, although
// the cached one is far from expiry, and the role is named from
// GetCallerIdentity of the assumed-role key.
func TestProfileCredentialsCache(t *testing.T) {
	clk := newSrcClock()
	srv := newSrcServer(t, clk)
	provider := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(srcClient(srv, srcBase(), 0), srcRoleARN,
		func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "profile-session" }))
	src := rotator.NewProfile("deploy", "", provider, srcClient(srv, provider, 0), clk.Now)
	seen := map[string]bool{}
	for i := range 3 {
		got, err := src.Fetch(t.Context())
		if err != nil {
			t.Fatalf("Fetch() #%d = %v, want credentials", i, err)
		}
		is := srcLastIssued(t, srv)
		want := srcWant(is, stscreds.ProviderName, srcRoleARN)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Fetch() #%d mismatch (-want +got):\n%s", i, diff)
		}
		if seen[got.AccessKeyID] {
			t.Errorf("Fetch() #%d returned %s again, want a fresh set", i, got.AccessKeyID)
		}
		seen[got.AccessKeyID] = true
		clk.Advance(time.Minute)
	}
	if n := srv.Stats("AssumeRole").Calls; n != 3 {
		t.Errorf("AssumeRole called %d times in 3 fetches, want 3", n)
	}
	gci := srcRequests(srv, "GetCallerIdentity")
	if len(gci) != 1 || gci[0].AccessKeyID != srv.Issued()[0].AccessKeyID {
		t.Errorf("GetCallerIdentity requests = %+v, want one signed by the first assumed-role key", gci)
	}
}

// A profile with a role_arn names that role, path included, before and
// after fetching, without asking STS who the credentials are.
func TestProfileRoleARN(t *testing.T) {
	clk := newSrcClock()
	srv := newSrcServer(t, clk)
	const role = "arn:aws:iam::123456789012:role/team/app"
	provider := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(srcClient(srv, srcBase(), 0), role))
	src := rotator.NewProfile("deploy", role, provider, srcClient(srv, provider, 0), clk.Now)
	if got := src.RoleARN(); got != role {
		t.Errorf("RoleARN() = %q, want %q", got, role)
	}
	got, err := src.Fetch(t.Context())
	if err != nil {
		t.Fatalf("Fetch() = %v, want credentials", err)
	}
	if diff := cmp.Diff(srcWant(srcLastIssued(t, srv), stscreds.ProviderName, role), got); diff != "" {
		t.Errorf("Fetch() mismatch (-want +got):\n%s", diff)
	}
	if n := srv.Stats("GetCallerIdentity").Calls; n != 0 {
		t.Errorf("GetCallerIdentity called %d times, want none: the role ARN is known", n)
	}
}

// Long-term keys get an advertised lifetime from the injected clock.
func TestProfileLongTermKeys(t *testing.T) {
	srv := newSrcServer(t, newSrcClock())
	base := time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)
	now := func() time.Time { return base.Add(1750 * time.Millisecond) }
	src := rotator.NewProfile("default", "", srcBase(), srcClient(srv, srcBase(), 0), now)
	got, err := src.Fetch(t.Context())
	if err != nil {
		t.Fatalf("Fetch() = %v, want credentials", err)
	}
	want := aws.Credentials{
		AccessKeyID: srcAKID, SecretAccessKey: srcSecret,
		Source: credentials.StaticCredentialsName, CanExpire: true,
		Expires:   base.Add(time.Second + 6*time.Hour),
		AccountID: srcAccount,
	}
	if diff := cmp.Diff(want, got.Credentials); diff != "" {
		t.Errorf("Fetch() mismatch (-want +got):\n%s", diff)
	}
}

func TestStatic(t *testing.T) {
	base := time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)
	// A wall clock with a fraction of a second.
	now := func() time.Time { return base.Add(999 * time.Millisecond) }
	tests := []struct {
		name  string
		creds aws.Credentials
	}{
		{"long-term keys", aws.Credentials{AccessKeyID: "minioadmin", SecretAccessKey: "minio-secret"}},
		{"with a session token", aws.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "s", SessionToken: "tok", AccountID: srcAccount}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := rotator.NewStatic(tc.creds, now)
			if err != nil {
				t.Fatalf("NewStatic() = %v", err)
			}
			for range 2 {
				got, err := src.Fetch(t.Context())
				if err != nil {
					t.Fatalf("Fetch() = %v, want credentials", err)
				}
				want := tc.creds
				want.Source, want.CanExpire, want.Expires = "static", true, base.Add(6*time.Hour)
				if diff := cmp.Diff(rotator.Credentials{Credentials: want}, got); diff != "" {
					t.Errorf("Fetch() mismatch (-want +got):\n%s", diff)
				}
			}
		})
	}
	const missing = "static: an access key ID and secret access key are needed; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the service's environment, or use --profile"
	for _, c := range []aws.Credentials{{AccessKeyID: "AKIAEXAMPLE"}, {SecretAccessKey: "s"}, {}} {
		if _, err := rotator.NewStatic(c, now); err == nil || err.Error() != missing {
			t.Errorf("NewStatic(%+v) = %v, want %q", c, err, missing)
		}
	}
}

// End to end: the rotator drives an assume-role source whose real STS client
// talks to the fake STS in process; for 6 simulated hours every
// Current() is a set STS issued, with at least 30 minutes left.
func TestRotatorAssumeRoleEndToEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := ststest.New(ststest.WithBaseCredentials(srcAKID, srcSecret, srcUserARN))
		defer srv.Close()
		client := sts.New(sts.Options{
			Region:       "us-east-1",
			BaseEndpoint: aws.String("http://sts.test"),
			Credentials:  srcBase(),
			HTTPClient:   &http.Client{Transport: srv.Transport()},
		})
		src, err := rotator.NewAssumeRole(client, srcRoleARN, rotator.AssumeRoleOptions{
			SessionOptions: rotator.SessionOptions{RoleSessionName: "imdsd-e2e"},
		})
		if err != nil {
			t.Fatalf("NewAssumeRole() = %v", err)
		}
		r := rotator.New(src, rotator.Options{Source: "assume-role", Jitter: rand.New(rand.NewPCG(1, 2)).Float64})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		synctest.Wait()

		start := time.Now()
		for time.Since(start) < 6*time.Hour {
			got, err := r.Current(ctx)
			if err != nil {
				t.Fatalf("Current() at +%v = %v, want credentials", time.Since(start), err)
			}
			var is *ststest.Credentials
			for _, c := range srv.Issued() {
				if c.AccessKeyID == got.AccessKeyID {
					is = &c
				}
			}
			if is == nil {
				t.Fatalf("Current() at +%v = %s, not a key ststest issued", time.Since(start), got.AccessKeyID)
			}
			want := srcWant(*is, "AssumeRole", srcRoleARN).Credentials
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("Current() at +%v mismatch (-want +got):\n%s", time.Since(start), diff)
			}
			if left := time.Until(got.Expires); left < 30*time.Minute {
				t.Fatalf("Current() at +%v has %v left, want ≥ 30m", time.Since(start), left)
			}
			time.Sleep(time.Minute)
		}
		// 1h credentials refreshed every 18..20 minutes (the first refresh
		// is spread wider).
		if n := srv.Stats("AssumeRole"); n.Calls < 18 || n.Calls > 25 || n.Failures != 0 {
			t.Errorf("AssumeRole stats over 6h = %+v, want 18..25 calls, no failures", n)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v, want nil on cancel", err)
		}
	})
}
