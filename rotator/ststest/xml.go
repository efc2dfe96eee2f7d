package ststest

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"strconv"
)

// namespace is the XML namespace of every STS response document.
const namespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// wireTime is the format of Expiration on the wire.
const wireTime = "2006-01-02T15:04:05Z"

func stsName(local string) xml.Name { return xml.Name{Space: namespace, Local: local} }

// envelope is <OpResponse><OpResult>…</OpResult><ResponseMetadata>…; the
// Result value carries its own XMLName.
type envelope struct {
	XMLName xml.Name
	Result  any
	Meta    responseMetadata `xml:"ResponseMetadata"`
}

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

type errorResponse struct {
	XMLName   xml.Name    `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
	Error     errorDetail `xml:"Error"`
	RequestID string      `xml:"RequestId"`
}

type errorDetail struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type credentialsXML struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

func toXML(c Credentials) credentialsXML {
	return credentialsXML{
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		SessionToken:    c.SessionToken,
		Expiration:      c.Expiration.UTC().Format(wireTime),
	}
}

type assumedRoleUser struct {
	Arn           string `xml:"Arn"`
	AssumedRoleID string `xml:"AssumedRoleId"`
}

type federatedUser struct {
	FederatedUserID string `xml:"FederatedUserId"`
	Arn             string `xml:"Arn"`
}

type assumeRoleResult struct {
	XMLName xml.Name `xml:"AssumeRoleResult"`
	assumeRoleFields
}

type webIdentityResult struct {
	XMLName                     xml.Name `xml:"AssumeRoleWithWebIdentityResult"`
	SubjectFromWebIdentityToken string   `xml:"SubjectFromWebIdentityToken"`
	Audience                    string   `xml:"Audience"`
	assumeRoleFields
	Provider string `xml:"Provider"`
}

type samlResult struct {
	XMLName xml.Name `xml:"AssumeRoleWithSAMLResult"`
	assumeRoleFields
	Audience      string `xml:"Audience"`
	Issuer        string `xml:"Issuer"`
	Subject       string `xml:"Subject"`
	SubjectType   string `xml:"SubjectType"`
	NameQualifier string `xml:"NameQualifier"`
}

// assumeRoleFields are the members AssumeRoleWithWebIdentity and
// AssumeRoleWithSAML share with AssumeRole.
type assumeRoleFields struct {
	AssumedRoleUser  assumedRoleUser `xml:"AssumedRoleUser"`
	Credentials      credentialsXML  `xml:"Credentials"`
	PackedPolicySize *int            `xml:"PackedPolicySize,omitempty"`
	tokenSize
	SourceIdentity string `xml:"SourceIdentity,omitempty"`
}

// maxSessionToken is the largest session token STS issues, in bytes (SDK
// changelog: "Increases the maximum session token size to 4,096 bytes").
const maxSessionToken = 4096

// tokenSize are the SessionTokenSize and SessionTokenUtilization members
// that replaced PackedPolicySize.
type tokenSize struct {
	SessionTokenSize        int `xml:"SessionTokenSize"`
	SessionTokenUtilization int `xml:"SessionTokenUtilization"`
}

func sizeOf(c Credentials) tokenSize {
	n := len(c.SessionToken)
	return tokenSize{SessionTokenSize: n, SessionTokenUtilization: min(100, (n*100+maxSessionToken-1)/maxSessionToken)}
}

type sessionTokenResult struct {
	XMLName     xml.Name       `xml:"GetSessionTokenResult"`
	Credentials credentialsXML `xml:"Credentials"`
	tokenSize
}

type federationTokenResult struct {
	XMLName          xml.Name       `xml:"GetFederationTokenResult"`
	Credentials      credentialsXML `xml:"Credentials"`
	FederatedUser    federatedUser  `xml:"FederatedUser"`
	PackedPolicySize *int           `xml:"PackedPolicySize,omitempty"`
	tokenSize
}

type callerIdentityResult struct {
	XMLName xml.Name `xml:"GetCallerIdentityResult"`
	Arn     string   `xml:"Arn"`
	UserID  string   `xml:"UserId"`
	Account string   `xml:"Account"`
}

type replyKind int

const (
	replySend   replyKind = iota // send status and body
	replyNone                    // send nothing (client gone)
	replyDrop                    // close the connection without a response
	replyNormal                  // a fault that only delayed: serve normally
)

// reply is what the server will answer, decided before it is recorded and
// sent.
type reply struct {
	kind        replyKind
	status      int
	contentType string
	reqID       string
	body        []byte
}

// xmlReply encodes v as an XML response.
func xmlReply(status int, reqID string, v any) reply {
	var buf bytes.Buffer
	if err := xml.NewEncoder(&buf).Encode(v); err != nil {
		// Only reachable through a programming error in this package.
		return reply{status: http.StatusInternalServerError, contentType: "text/plain", body: []byte("encode response: " + err.Error())}
	}
	return reply{status: status, contentType: "text/xml", reqID: reqID, body: buf.Bytes()}
}

// errorReply is the ErrorResponse document of e (SPEC.md R11.3).
func errorReply(reqID string, e *apiError) reply {
	typ := "Sender"
	if e.status >= 500 {
		typ = "Receiver"
	}
	return xmlReply(e.status, reqID, errorResponse{
		Error:     errorDetail{Type: typ, Code: e.code, Message: e.message},
		RequestID: reqID,
	})
}

func (rep reply) send(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", rep.contentType)
	h.Set("Content-Length", strconv.Itoa(len(rep.body)))
	if rep.reqID != "" {
		h.Set("X-Amzn-Requestid", rep.reqID)
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
}
