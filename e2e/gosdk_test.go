package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// goSDK is aws-sdk-go-v2 at the versions in go.mod: config.LoadDefaultConfig
// (whose chain ends with ec2rolecreds) and imds.Client.GetRegion, configured
// by the environment only (AWS_EC2_METADATA_SERVICE_ENDPOINT,
// AWS_EC2_METADATA_V1_DISABLED). It runs as a child process: the test binary
// itself with IMDSD_E2E_HELPER=goclient (see TestMain).
var goSDK = client{
	name: "aws-sdk-go-v2",
	argv: func(t *testing.T) []string {
		t.Helper()
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		return []string{exe, "-test.run=^$"}
	},
	// Under -race the child would otherwise sleep 1 s at exit
	// (ThreadSanitizer's atexit_sleep_ms).
	extraEnv: []string{helperEnv + "=goclient", "GORACE=atexit_sleep_ms=0"},
	parse: func(t *testing.T, out []byte) clientResult {
		t.Helper()
		var p goClientOutput
		if err := json.Unmarshal(out, &p); err != nil {
			t.Fatalf("go client: output is not JSON: %v", err)
		}
		if !p.CanExpire {
			t.Errorf("go client: CanExpire = false, want true")
		}
		return clientResult{
			creds:  creds{p.AccessKeyID, p.SecretAccessKey, p.SessionToken, p.Expires},
			Region: p.Region,
		}
	},
	// ec2rolecreds caps Expires at retrieval + 1h.
	expiry:      expiryCap1h,
	readsRegion: true,
}

func TestGoSDKv2(t *testing.T) { testClient(t, goSDK) }

type goClientOutput struct {
	AccessKeyID, SecretAccessKey, SessionToken, Source string
	CanExpire                                          bool
	Expires                                            time.Time
	Region                                             string
}

// goClientMain is the Go SDK client program: it prints goClientOutput as
// JSON, or an error and exit status 1.
func goClientMain(stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "load default config: %v\n", err)
		return 1
	}
	c, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "retrieve credentials: %v\n", err)
		return 1
	}
	region, err := imds.NewFromConfig(cfg).GetRegion(ctx, &imds.GetRegionInput{})
	if err != nil {
		fmt.Fprintf(stderr, "get region: %v\n", err)
		return 1
	}
	out := goClientOutput{
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		SessionToken:    c.SessionToken,
		Source:          c.Source,
		CanExpire:       c.CanExpire,
		Expires:         c.Expires,
		Region:          region.Region,
	}
	if err := json.NewEncoder(stdout).Encode(out); err != nil {
		fmt.Fprintf(stderr, "encode: %v\n", err)
		return 1
	}
	return 0
}
