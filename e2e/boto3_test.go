package e2e

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"
)

// boto3 is Debian's python3-boto3 under the system interpreter (not a pyenv
// python that may lack it), running testdata/boto3_creds.py in isolated mode
// (-I: no PYTHON* variables, no user site-packages).
//
// botocore 1.29 (Debian 12) predates AWS_EC2_METADATA_V1_DISABLED; the
// daemon's required mode still makes any tokenless GET fail, so a broken
// token path cannot pass unnoticed.
var boto3 = client{
	name: "boto3",
	argv: func(t *testing.T) []string {
		t.Helper()
		needFile(t, "/usr/bin/python3", "apt-get install -y python3")
		needFile(t, "/usr/lib/python3/dist-packages/boto3/__init__.py", "apt-get install -y python3-boto3")
		script, err := filepath.Abs(filepath.Join("testdata", "boto3_creds.py"))
		if err != nil {
			t.Fatal(err)
		}
		return []string{"/usr/bin/python3", "-I", script}
	},
	parse: func(t *testing.T, out []byte) clientResult {
		t.Helper()
		var p struct {
			AccessKey     string  `json:"access_key"`
			SecretKey     string  `json:"secret_key"`
			Token         string  `json:"token"`
			Expiry        *string `json:"expiry"`
			SessionRegion *string `json:"session_region"`
			IMDSRegion    *string `json:"imds_region"`
			Botocore      string  `json:"botocore"`
		}
		if err := json.Unmarshal(out, &p); err != nil {
			t.Fatalf("boto3_creds.py: output is not JSON: %v", err)
		}
		var r clientResult
		r.creds = creds{AccessKeyID: p.AccessKey, SecretAccessKey: p.SecretKey, SessionToken: p.Token}
		if p.Expiry != nil {
			exp, err := time.Parse(time.RFC3339, *p.Expiry)
			if err != nil {
				t.Fatalf("boto3_creds.py: expiry: %v", err)
			}
			r.Expiration = exp
		}
		if p.IMDSRegion != nil {
			r.Region = *p.IMDSRegion
		}
		if p.SessionRegion != nil {
			t.Logf("botocore %s: Session().region_name = %q", p.Botocore, *p.SessionRegion)
		}
		return r
	},
	expiry:      expiryOptional,
	readsRegion: true,
}

func TestBoto3(t *testing.T) { testClient(t, boto3) }
