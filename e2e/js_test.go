package e2e

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"
)

// jsSDK is the AWS SDK for JavaScript v3 (`fromInstanceMetadata()` of
// @aws-sdk/credential-providers, i.e. @smithy/credential-provider-imds) at
// the exact versions pinned in js/package-lock.json, under Debian's Node.
// fromInstanceMetadata alone does not read AWS_EC2_METADATA_DISABLED (the
// default chain does, in @aws-sdk/credential-provider-node), so the
// imds-disabled control runs only for jsSDKChain.
var jsSDK = client{
	name:         "aws-sdk-js-v3",
	argv:         jsArgv("imds"),
	parse:        parseJS,
	expiry:       expiryExact,
	noDisableEnv: true,
}

// jsSDKChain is the same SDK through fromNodeProviderChain(), the default
// chain applications get; with no other source configured it ends at IMDS.
var jsSDKChain = client{
	name:   "aws-sdk-js-v3-chain",
	argv:   jsArgv("chain"),
	parse:  parseJS,
	expiry: expiryExact,
}

func TestJSSDKv3(t *testing.T)      { testClient(t, jsSDK) }
func TestJSSDKv3Chain(t *testing.T) { testClient(t, jsSDKChain) }

func jsArgv(mode string) func(t *testing.T) []string {
	return func(t *testing.T) []string {
		t.Helper()
		needFile(t, "/usr/bin/node", "apt-get install -y nodejs npm")
		dir, err := filepath.Abs("js")
		if err != nil {
			t.Fatal(err)
		}
		needFile(t, filepath.Join(dir, "node_modules", "@aws-sdk", "credential-providers", "package.json"),
			"run `make deps` (or `npm ci --prefix e2e/js`)")
		return []string{"/usr/bin/node", filepath.Join(dir, "imds-creds.mjs"), mode}
	}
}

func parseJS(t *testing.T, out []byte) clientResult {
	t.Helper()
	var p struct {
		AccessKeyID     string  `json:"accessKeyId"`
		SecretAccessKey string  `json:"secretAccessKey"`
		SessionToken    string  `json:"sessionToken"`
		Expiration      *string `json:"expiration"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("imds-creds.mjs: output is not JSON: %v", err)
	}
	if p.Expiration == nil {
		t.Fatal("imds-creds.mjs: no expiration")
	}
	exp, err := time.Parse(time.RFC3339, *p.Expiration) // toISOString(): 2026-11-22T14:19:46.000Z
	if err != nil {
		t.Fatalf("imds-creds.mjs: expiration: %v", err)
	}
	return clientResult{creds: creds{p.AccessKeyID, p.SecretAccessKey, p.SessionToken, exp}}
}
