package ststest_test

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func TestAuthentication(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	srv := newServer(t, clk)
	out, err := baseClient(srv).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1"), DurationSeconds: aws.Int32(900),
	})
	if err != nil {
		t.Fatalf("AssumeRole() error = %v", err)
	}
	c := out.Credentials
	akid, secret, token := aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken)

	tests := []struct {
		name   string
		creds  aws.CredentialsProvider
		code   string
		status int
	}{
		{"anonymous", aws.AnonymousCredentials{}, "MissingAuthenticationToken", 403},
		{"unknown key", credentials.NewStaticCredentialsProvider("AKIAUNKNOWNKEY000000", baseSecret, ""), "InvalidClientTokenId", 403},
		{"wrong secret", credentials.NewStaticCredentialsProvider(baseAKID, "wrong", ""), "SignatureDoesNotMatch", 403},
		{"base key with a session token", credentials.NewStaticCredentialsProvider(baseAKID, baseSecret, token), "InvalidClientTokenId", 403},
		{"issued key without its session token", credentials.NewStaticCredentialsProvider(akid, secret, ""), "InvalidClientTokenId", 403},
		{"issued key with another token", credentials.NewStaticCredentialsProvider(akid, secret, token+"x"), "InvalidClientTokenId", 403},
		{"issued key, wrong secret", credentials.NewStaticCredentialsProvider(akid, baseSecret, token), "SignatureDoesNotMatch", 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newClient(srv, tc.creds, 1).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			wantAPIError(t, err, tc.code, tc.status)
		})
	}

	t.Run("issued key valid until expiry", func(t *testing.T) {
		client := newClient(srv, credentials.NewStaticCredentialsProvider(akid, secret, token), 1)
		clk.Advance(15*time.Minute - time.Second)
		if _, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
			t.Fatalf("GetCallerIdentity() one second before expiry: error = %v", err)
		}
		clk.Advance(time.Second)
		_, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		wantAPIError(t, err, "ExpiredToken", 403)
	})
}

// errorDoc is the ErrorResponse document of SPEC.md R11.3.
type errorDoc struct {
	XMLName xml.Name
	Type    string `xml:"Error>Type"`
	Code    string `xml:"Error>Code"`
	Message string `xml:"Error>Message"`
	ReqID   string `xml:"RequestId"`
}

// post sends a raw, unsigned form request and returns status and body.
func post(t *testing.T, endpoint string, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.Post(endpoint, "application/x-www-form-urlencoded; charset=utf-8", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, string(body)
}

// TestWireFormat pins the XML documents byte-level features the SDKs and
// botocore rely on, using raw HTTP.
func TestWireFormat(t *testing.T) {
	srv := newServer(t, nil)
	tests := []struct {
		name       string
		form       url.Values
		status     int
		code, msg  string
		wantPrefix string
	}{
		{
			name:   "success envelope",
			form:   url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}, "RoleArn": {roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {makeJWT(t, map[string]any{"iss": "https://i", "sub": "u", "aud": "a"})}},
			status: 200,
			wantPrefix: `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">` +
				`<AssumeRoleWithWebIdentityResult><SubjectFromWebIdentityToken>u</SubjectFromWebIdentityToken><Audience>a</Audience>` +
				`<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/app/s1</Arn>`,
		},
		{name: "missing signature", form: url.Values{"Action": {"GetCallerIdentity"}, "Version": {"2011-06-15"}}, status: 403, code: "MissingAuthenticationToken", msg: "Request is missing Authentication Token"},
		{name: "unknown action", form: url.Values{"Action": {"AssumeRoot"}, "Version": {"2011-06-15"}}, status: 400, code: "InvalidAction", msg: "Could not find operation AssumeRoot for version 2011-06-15"},
		{name: "wrong version", form: url.Values{"Action": {"AssumeRole"}, "Version": {"2010-05-08"}}, status: 400, code: "InvalidAction", msg: "Could not find operation AssumeRole for version 2010-05-08"},
		{name: "missing version", form: url.Values{"Action": {"AssumeRole"}}, status: 400, code: "InvalidAction", msg: "Could not find operation AssumeRole for version NO_VERSION_SPECIFIED"},
		{name: "missing action", form: url.Values{"Version": {"2011-06-15"}}, status: 400, code: "MissingAction", msg: "Missing Action"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, srv.URL, tc.form)
			if status != tc.status {
				t.Errorf("status = %d, want %d; body %s", status, tc.status, body)
			}
			if tc.wantPrefix != "" {
				if !strings.HasPrefix(body, tc.wantPrefix) {
					t.Errorf("body = %s\nwant prefix %s", body, tc.wantPrefix)
				}
				if !strings.Contains(body, "</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>") {
					t.Errorf("body = %s, want Result followed by ResponseMetadata/RequestId", body)
				}
				return
			}
			var doc errorDoc
			if err := xml.Unmarshal([]byte(body), &doc); err != nil {
				t.Fatalf("unmarshal %s: %v", body, err)
			}
			want := errorDoc{XMLName: xml.Name{Space: "https://sts.amazonaws.com/doc/2011-06-15/", Local: "ErrorResponse"}, Type: "Sender", Code: tc.code, Message: tc.msg, ReqID: doc.ReqID}
			if doc != want || len(doc.ReqID) != 36 {
				t.Errorf("error document = %+v, want %+v with a UUID RequestId", doc, want)
			}
		})
	}
}
