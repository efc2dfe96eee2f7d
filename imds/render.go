package imds

import (
	"bytes"
	"encoding/json"
	"github.com/imdsd/imdsd/internal/shape"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// timeLayout is how IMDS writes times: UTC, whole seconds, literal Z.
// botocore parses Expiration with strptime("%Y-%m-%dT%H:%M:%SZ") and silently
// skips its expiry logic on anything else (SPEC.md R5.4).
const timeLayout = "2006-01-02T15:04:05Z"

func imdsTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// credentialsDoc is iam/security-credentials/ROLE (SPEC.md R5.3); the field
// order is the one EC2 uses.
type credentialsDoc struct {
	Code            string
	LastUpdated     string
	Type            string
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	Token           string
	Expiration      string
	AccountID       string `json:"AccountId,omitempty"` // extended path only (R6.5)
}

// errorDoc is what EC2 serves on the role path when it cannot obtain
// credentials (SPEC.md R5.5): 200, with Code other than Success.
type errorDoc struct {
	Code        string
	Message     string
	LastUpdated string
}

// infoDoc is iam/info (SPEC.md R5.6).
type infoDoc struct {
	Code               string
	LastUpdated        string
	InstanceProfileArn string
	InstanceProfileID  string `json:"InstanceProfileId"`
}

// identityDoc is /latest/dynamic/instance-identity/document (SPEC.md R6.3).
// Unknown values are JSON null, as on EC2; pendingTime must be RFC 3339
// because the Go SDKs unmarshal it into time.Time.
type identityDoc struct {
	AccountID               string    `json:"accountId"`
	Architecture            string    `json:"architecture"`
	AvailabilityZone        string    `json:"availabilityZone"`
	BillingProducts         *[]string `json:"billingProducts"`
	DevpayProductCodes      *[]string `json:"devpayProductCodes"`
	MarketplaceProductCodes *[]string `json:"marketplaceProductCodes"`
	ImageID                 string    `json:"imageId"`
	InstanceID              string    `json:"instanceId"`
	InstanceType            string    `json:"instanceType"`
	KernelID                *string   `json:"kernelId"`
	PendingTime             string    `json:"pendingTime"`
	PrivateIP               string    `json:"privateIp"`
	RamdiskID               *string   `json:"ramdiskId"`
	Region                  string    `json:"region"`
	Version                 string    `json:"version"`
}

// renderJSON writes v the way IMDS pretty-prints: two-space indent and
// `"Key" : value`. Field values never contain raw newlines (JSON escapes
// them), so the key of every line is found before its first `": `.
func renderJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		// Only plain structs of strings reach here.
		panic("imds: render " + err.Error())
	}
	lines := bytes.Split(b, []byte("\n"))
	for i, l := range lines {
		if bytes.HasPrefix(l, []byte(`  "`)) {
			lines[i] = bytes.Replace(l, []byte(`": `), []byte(`" : `), 1)
		}
	}
	return bytes.Join(lines, []byte("\n"))
}

// body is a pre-rendered response: the bytes and their Content-Length.
type body struct {
	b   []byte
	len []string
}

func newBody(b []byte) body { return body{b: b, len: []string{strconv.Itoa(len(b))}} }

func textBody(lines ...string) body { return newBody([]byte(strings.Join(lines, "\n"))) }

// Snapshot is what the credential holder publishes: the credentials to serve,
// or why there are none.
type Snapshot struct {
	// Credentials are served until Credentials.Expires; served only when
	// HasKeys() and CanExpire (IMDS credentials always expire).
	Credentials aws.Credentials
	// Obtained is when Credentials were obtained (LastUpdated).
	Obtained time.Time
	// ServeUntil is when to stop serving Credentials, a margin before
	// they expire so that no client is handed a set that dies in its hands
	// (the holder's rule; see rotator.ExpiryMargin). Zero means
	// Credentials.Expires.
	ServeUntil time.Time
	// RoleARN is the role the credentials act as
	// (arn:aws:iam::ACCOUNT:role/NAME); it feeds iam/info. Optional.
	RoleARN string
	// AccountID overrides Config.AccountID when set (from the STS answer).
	AccountID string
	// ErrCode and ErrMessage describe the latest failure to obtain
	// credentials (an upstream error code such as AccessDenied); they are
	// served in the error document once no valid credentials are left.
	// ErrAt is when it happened.
	ErrCode, ErrMessage string
	ErrAt               time.Time
}

// rendered is one published state with every body that depends on it.
type rendered struct {
	creds, credsExt body   // zero when no credentials are held
	keyID           string // the access key ID of creds, for the Observer
	expires         time.Time
	errDoc          body // served when creds are absent or expired
	info            body
	identity        body
}

func (h *Handler) render(s Snapshot) *rendered {
	c := h.cfg
	account := c.AccountID
	if s.AccountID != "" {
		account = s.AccountID
	} else if a := arnAccount(s.RoleARN); a != "" {
		account = a
	}
	updated := s.Obtained
	if updated.IsZero() {
		updated = c.LaunchTime
	}
	r := &rendered{}
	if s.Credentials.HasKeys() && s.Credentials.CanExpire {
		doc := credentialsDoc{
			Code:            "Success",
			LastUpdated:     imdsTime(s.Obtained),
			Type:            "AWS-HMAC",
			AccessKeyID:     s.Credentials.AccessKeyID,
			SecretAccessKey: s.Credentials.SecretAccessKey,
			Token:           s.Credentials.SessionToken,
			Expiration:      imdsTime(s.Credentials.Expires),
		}
		r.creds = newBody(renderJSON(doc))
		doc.AccountID = account
		r.credsExt = newBody(renderJSON(doc))
		r.expires = serveUntil(s)
		r.keyID = s.Credentials.AccessKeyID
	}
	e := errorDoc{Code: s.ErrCode, Message: s.ErrMessage, LastUpdated: imdsTime(s.ErrAt)}
	switch {
	case e.Code != "":
	case r.creds.b != nil:
		e = errorDoc{Code: "CredentialsExpired", Message: "The credentials expired and have not been renewed yet.", LastUpdated: imdsTime(r.expires)}
	default:
		e = errorDoc{Code: "CredentialsNotReady", Message: "No credentials have been obtained yet.", LastUpdated: imdsTime(c.Now())}
	}
	r.errDoc = newBody(renderJSON(e))
	r.info = newBody(renderJSON(infoDoc{
		Code:               "Success",
		LastUpdated:        imdsTime(updated),
		InstanceProfileArn: "arn:" + partition(c.Region) + ":iam::" + account + ":instance-profile/" + c.RoleName,
		InstanceProfileID:  "AIPA" + idFromSeed(account+c.RoleName),
	}))
	r.identity = newBody(renderJSON(identityDoc{
		AccountID:        account,
		Architecture:     "x86_64",
		AvailabilityZone: c.AvailabilityZone,
		ImageID:          c.ImageID,
		InstanceID:       c.InstanceID,
		InstanceType:     c.InstanceType,
		PendingTime:      imdsTime(c.LaunchTime),
		PrivateIP:        c.LocalIPv4,
		Region:           c.Region,
		Version:          "2017-09-30",
	}))
	return r
}

// serveUntil is when to stop serving s's credentials: ServeUntil, and never
// after the Expiration clients are told, which is written in whole seconds.
func serveUntil(s Snapshot) time.Time {
	until := s.Credentials.Expires.Truncate(time.Second)
	if !s.ServeUntil.IsZero() && s.ServeUntil.Before(until) {
		until = s.ServeUntil
	}
	return until
}

// arnAccount returns the account of an ARN when it is a 12-digit account
// ID, or "". The SDK's parser is the one parser of ARNs in imdsd.
func arnAccount(s string) string {
	if a, err := arn.Parse(s); err == nil && shape.AccountID(a.AccountID) {
		return a.AccountID
	}
	return ""
}

// partition and domain follow the region's partition (SPEC.md services/).
func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

func domain(region string) string {
	if strings.HasPrefix(region, "cn-") {
		return "amazonaws.com.cn"
	}
	return "amazonaws.com"
}

// idFromSeed derives 17 stable upper-case alphanumerics, the shape of the
// unique part of IAM IDs.
func idFromSeed(seed string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	var out [17]byte
	x := fnv64(seed)
	y := fnv64(seed + "\x00")
	for i := range out {
		if i < 12 {
			out[i] = alphabet[x&31]
			x >>= 5
		} else {
			out[i] = alphabet[y&31]
			y >>= 5
		}
	}
	return string(out[:])
}

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
