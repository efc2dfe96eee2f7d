package ststest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"strings"
	"time"
)

// JWT returns a web identity token in compact JWS form carrying claims, for
// AssumeRoleWithWebIdentity against a Server. The Server reads the claims
// (aud, exp, sub, iss) and ignores the signature, so the token is good for
// it alone. Like httptest.NewServer on a failure, JWT panics if claims do
// not marshal to JSON.
func JWT(claims map[string]any) string {
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(fmt.Sprintf("ststest: JWT claims: %v", err))
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT","kid":"ststest"}`)) + "." +
		enc.EncodeToString(payload) + "." + enc.EncodeToString([]byte("signature-not-checked"))
}

// SAMLResponse is an identity provider's answer as a Server reads it for
// AssumeRoleWithSAML. Its XML signature is not checked, so the assertion is
// good for a Server alone.
type SAMLResponse struct {
	Issuer       string // the IdP's entity ID
	NameID       string // the subject
	NameIDFormat string // default persistent
	Session      string // the RoleSessionName attribute
	// Roles are values of the Role attribute, "ROLE_ARN,PROVIDER_ARN";
	// optional for a Server.
	Roles        []string
	NotOnOrAfter time.Time
}

// Encode returns the base64 SAMLResponse document, as an IdP posts it.
func (r SAMLResponse) Encode() string {
	format := r.NameIDFormat
	if format == "" {
		format = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	}
	var roles strings.Builder
	if len(r.Roles) > 0 {
		roles.WriteString(`<saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/Role">`)
		for _, v := range r.Roles {
			roles.WriteString(`<saml:AttributeValue>` + html.EscapeString(v) + `</saml:AttributeValue>`)
		}
		roles.WriteString(`</saml:Attribute>`)
	}
	esc := html.EscapeString
	doc := `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_1" Version="2.0">` +
		`<saml:Issuer>` + esc(r.Issuer) + `</saml:Issuer><saml:Assertion ID="_2" Version="2.0"><saml:Issuer>` + esc(r.Issuer) + `</saml:Issuer>` +
		`<saml:Subject><saml:NameID Format="` + esc(format) + `">` + esc(r.NameID) + `</saml:NameID></saml:Subject>` +
		`<saml:Conditions NotOnOrAfter="` + r.NotOnOrAfter.UTC().Format(time.RFC3339) + `"><saml:AudienceRestriction><saml:Audience>https://signin.aws.amazon.com/saml</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
		`<saml:AttributeStatement>` + roles.String() +
		`<saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/RoleSessionName"><saml:AttributeValue>` + esc(r.Session) + `</saml:AttributeValue></saml:Attribute></saml:AttributeStatement>` +
		`</saml:Assertion></samlp:Response>`
	return base64.StdEncoding.EncodeToString([]byte(doc))
}
