package imds_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	ec2imds "github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/imdsd/imdsd/imds"
	"github.com/rs/zerolog"
)

// The real aws-sdk-go-v2 IMDS client and EC2 role provider, IMDSv2 only,
// against the handler on a real socket (SPEC.md R8.1: without the v1
// fallback, a token bug cannot hide behind a silent downgrade).
func TestRealGoSDK(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	creds := aws.Credentials{
		AccessKeyID:     "ASIAGOSDKTEST0000001",
		SecretAccessKey: "go/sdk/secret/key/0000000000000000000000",
		SessionToken:    "IQoJb3JpZ2luX2VjGOSDKSESSIONTOKEN",
		CanExpire:       true,
		Expires:         now.Add(6 * time.Hour),
	}
	h, err := imds.NewHandler(imds.Config{RoleName: "sdk-role", Region: "eu-central-1", TokenMode: imds.TokenRequired}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	h.Publish(imds.Snapshot{Credentials: creds, Obtained: now, RoleARN: "arn:aws:iam::210987654321:role/sdk-role"})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	client := ec2imds.New(ec2imds.Options{
		Endpoint:       srv.URL,
		EnableFallback: aws.FalseTernary, // AWS_EC2_METADATA_V1_DISABLED=true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	region, err := client.GetRegion(ctx, nil)
	if err != nil {
		t.Fatalf("GetRegion() = %v", err)
	}
	if region.Region != "eu-central-1" {
		t.Errorf("GetRegion() = %q, want eu-central-1", region.Region)
	}
	info, err := client.GetIAMInfo(ctx, nil)
	if err != nil {
		t.Fatalf("GetIAMInfo() = %v", err)
	}
	if want := "arn:aws:iam::210987654321:instance-profile/sdk-role"; info.InstanceProfileArn != want {
		t.Errorf("InstanceProfileArn = %q, want %q", info.InstanceProfileArn, want)
	}
	doc, err := client.GetInstanceIdentityDocument(ctx, nil)
	if err != nil {
		t.Fatalf("GetInstanceIdentityDocument() = %v", err)
	}
	if doc.AccountID != "210987654321" || doc.AvailabilityZone != "eu-central-1a" || doc.PendingTime.IsZero() {
		t.Errorf("identity document = %+v", doc.InstanceIdentityDocument)
	}

	provider := aws.NewCredentialsCache(ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = client }))
	got, err := provider.Retrieve(ctx)
	if err != nil {
		t.Fatalf("Retrieve() = %v", err)
	}
	if got.AccessKeyID != creds.AccessKeyID || got.SecretAccessKey != creds.SecretAccessKey || got.SessionToken != creds.SessionToken {
		t.Errorf("Retrieve() keys = %q/%q/%q, want the published ones", got.AccessKeyID, got.SecretAccessKey, got.SessionToken)
	}
	if !got.CanExpire || got.Expires.After(creds.Expires) {
		// ec2rolecreds caps Expires at now+1h (SPEC.md §7); never later
		// than what was published.
		t.Errorf("Retrieve() Expires = %v, want ≤ %v", got.Expires, creds.Expires)
	}

	// A different role name in the listing would be followed by the SDK;
	// the error document must surface as an error, not as credentials.
	h.Publish(imds.Snapshot{ErrCode: "AccessDenied", ErrMessage: "denied", ErrAt: now})
	_, err = ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = client }).Retrieve(ctx)
	if err == nil {
		t.Fatal("Retrieve() with no valid credentials = nil error, want the error document's code")
	}
}
