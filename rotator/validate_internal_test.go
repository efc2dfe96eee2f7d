package rotator

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/google/go-cmp/cmp"
)

const (
	vRoleARN   = "arn:aws:iam::123456789012:role/imdsd"
	vSAMLARN   = "arn:aws:iam::123456789012:saml-provider/Okta"
	vPolicyDoc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`
	vReadOnly  = "arn:aws:iam::aws:policy/ReadOnlyAccess"
	vShortARN  = "arn:aws:iam::aws:x" // 18 characters

	// Rule texts as users read them.
	vNameRule   = `2..64 characters of [\w+=,.@-]`
	vKeyRule    = `1..128 characters of [\p{L}\p{Z}\p{N}_.:/=+\-@]`
	vValueRule  = `0..256 characters of [\p{L}\p{Z}\p{N}_.:/=+\-@]`
	vCharsRule  = "only tab, newline, carriage return and U+0020..U+00FF"
	vRoleShape  = "an IAM role ARN such as arn:aws:iam::123456789012:role/NAME"
	vSAMLShape  = "an IAM SAML provider ARN such as arn:aws:iam::123456789012:saml-provider/NAME"
	vEllipsis   = "…"
	vRolePrefix = "arn:aws:iam::123456789012:role/" // 31 characters
)

var valRep = strings.Repeat

func valTag(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }

// moreTags returns n valid tags k0=v … beyond the base ones.
func valMoreTags(n int) []types.Tag {
	var ts []types.Tag
	for i := range n {
		ts = append(ts, valTag(fmt.Sprintf("k%d", i), "v"))
	}
	return ts
}

func valPolicyARNs(n int) []types.PolicyDescriptorType {
	var ps []types.PolicyDescriptorType
	for i := range n {
		ps = append(ps, types.PolicyDescriptorType{Arn: aws.String(fmt.Sprintf("arn:aws:iam::123456789012:policy/p%d", i))})
	}
	return ps
}

func valContexts(n int) []types.ProvidedContext {
	var cs []types.ProvidedContext
	for range n {
		cs = append(cs, types.ProvidedContext{
			ProviderArn:      aws.String("arn:aws:iam::aws:contextProvider/IdentityCenter"),
			ContextAssertion: aws.String("signed-assertion"),
		})
	}
	return cs
}

// The valid inputs every case starts from: each sets every parameter its
// API has.
func valValidAssumeRole() *sts.AssumeRoleInput {
	return &sts.AssumeRoleInput{
		RoleArn:                 aws.String(vRoleARN),
		RoleSessionName:         aws.String("imdsd-alice@laptop"),
		DurationSeconds:         aws.Int32(3600),
		ExternalId:              aws.String("partner:42/a"),
		SerialNumber:            aws.String("arn:aws:iam::123456789012:mfa/alice"),
		TokenCode:               aws.String("123456"),
		SourceIdentity:          aws.String("alice"),
		Policy:                  aws.String(vPolicyDoc),
		PolicyArns:              []types.PolicyDescriptorType{{Arn: aws.String(vReadOnly)}},
		Tags:                    []types.Tag{valTag("Project", "imdsd"), valTag("Team", "Platform Ops")},
		TransitiveTagKeys:       []string{"project"},
		ProvidedContexts:        valContexts(1),
		MinimumSessionTokenSize: aws.Int32(0),
	}
}

func valValidWebIdentity() *sts.AssumeRoleWithWebIdentityInput {
	return &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:                 aws.String(vRoleARN),
		RoleSessionName:         aws.String("imdsd-ci"),
		WebIdentityToken:        aws.String("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"),
		ProviderId:              aws.String("www.amazon.com"),
		DurationSeconds:         aws.Int32(3600),
		Policy:                  aws.String(vPolicyDoc),
		PolicyArns:              []types.PolicyDescriptorType{{Arn: aws.String(vReadOnly)}},
		MinimumSessionTokenSize: aws.Int32(4096),
	}
}

func valValidSAML() *sts.AssumeRoleWithSAMLInput {
	return &sts.AssumeRoleWithSAMLInput{
		RoleArn:                 aws.String(vRoleARN),
		PrincipalArn:            aws.String(vSAMLARN),
		SAMLAssertion:           aws.String("PHNhbWxwOlJlc3BvbnNlPg=="),
		DurationSeconds:         aws.Int32(3600),
		Policy:                  aws.String(vPolicyDoc),
		PolicyArns:              []types.PolicyDescriptorType{{Arn: aws.String(vReadOnly)}},
		MinimumSessionTokenSize: aws.Int32(1024),
	}
}

func valValidSessionToken() *sts.GetSessionTokenInput {
	return &sts.GetSessionTokenInput{
		DurationSeconds:         aws.Int32(43200),
		SerialNumber:            aws.String("GAHT12345678"),
		TokenCode:               aws.String("000000"),
		MinimumSessionTokenSize: aws.Int32(0),
	}
}

func valValidFederation() *sts.GetFederationTokenInput {
	return &sts.GetFederationTokenInput{
		Name:                    aws.String("alice"),
		DurationSeconds:         aws.Int32(43200),
		Policy:                  aws.String(vPolicyDoc),
		PolicyArns:              []types.PolicyDescriptorType{{Arn: aws.String(vReadOnly)}},
		Tags:                    []types.Tag{valTag("Project", "imdsd")},
		MinimumSessionTokenSize: aws.Int32(0),
	}
}

func valAssumeRole(mod func(*sts.AssumeRoleInput)) error {
	in := valValidAssumeRole()
	mod(in)
	return validateAssumeRole(in)
}

func valWebIdentity(mod func(*sts.AssumeRoleWithWebIdentityInput)) error {
	in := valValidWebIdentity()
	mod(in)
	return validateAssumeRoleWithWebIdentity(in)
}

func valSAML(mod func(*sts.AssumeRoleWithSAMLInput)) error {
	in := valValidSAML()
	mod(in)
	return validateAssumeRoleWithSAML(in)
}

func valSessionToken(mod func(*sts.GetSessionTokenInput)) error {
	in := valValidSessionToken()
	mod(in)
	return validateGetSessionToken(in)
}

func valFederation(mod func(*sts.GetFederationTokenInput)) error {
	in := valValidFederation()
	mod(in)
	return validateGetFederationToken(in)
}

type validateCase struct {
	name string
	err  error
	want []string // lines of err.Error(); nil: valid
}

func runValidateCases(t *testing.T, cases []validateCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			if tc.err != nil {
				got = strings.Split(tc.err.Error(), "\n")
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("error lines (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateAssumeRole(t *testing.T) {
	longRole := vRolePrefix + valRep("p/", 1008) + "r" // 2048 characters
	runValidateCases(t, []validateCase{
		{"valid", validateAssumeRole(valValidAssumeRole()), nil},
		{"valid minimal", validateAssumeRole(&sts.AssumeRoleInput{
			RoleArn: aws.String(vRoleARN), RoleSessionName: aws.String("ab"),
		}), nil},
		{"nil input", validateAssumeRole(nil), []string{
			"role_arn: required",
			"role_session_name: required",
		}},

		// role_arn
		{"role arn nil", valAssumeRole(func(in *sts.AssumeRoleInput) { in.RoleArn = nil }), []string{"role_arn: required"}},
		{"role arn empty", valAssumeRole(func(in *sts.AssumeRoleInput) { in.RoleArn = aws.String("") }), []string{"role_arn: required"}},
		{"role arn of a user", valAssumeRole(func(in *sts.AssumeRoleInput) {
			in.RoleArn = aws.String("arn:aws:iam::123456789012:user/alice")
		}), []string{`role_arn: ` + vRoleShape + ` (got "arn:aws:iam::123456789012:user/alice")`}},
		{"role arn is a name", valAssumeRole(func(in *sts.AssumeRoleInput) { in.RoleArn = aws.String("imdsd") }),
			[]string{`role_arn: ` + vRoleShape + ` (got "imdsd")`}},
		{"role arn short account", valAssumeRole(func(in *sts.AssumeRoleInput) {
			in.RoleArn = aws.String("arn:aws:iam::12345678901:role/imdsd")
		}), []string{`role_arn: ` + vRoleShape + ` (got "arn:aws:iam::12345678901:role/imdsd")`}},
		{"role arn with path in another partition", valAssumeRole(func(in *sts.AssumeRoleInput) {
			in.RoleArn = aws.String("arn:aws-us-gov:iam::123456789012:role/service-role/imdsd")
		}), nil},
		{"role arn 2048", valAssumeRole(func(in *sts.AssumeRoleInput) { in.RoleArn = aws.String(longRole) }), nil},
		{"role arn 2049", valAssumeRole(func(in *sts.AssumeRoleInput) { in.RoleArn = aws.String(longRole + "r") }),
			[]string{`role_arn: 20..2048 characters (got "` + vRolePrefix + valRep("p/", 16) + "p" + vEllipsis + `")`}},

		// role_session_name
		{"session name 1", valAssumeRole(func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String("a") }),
			[]string{`role_session_name: 2..64 characters of [\w+=,.@-] (got "a")`}},
		{"session name 2", valAssumeRole(func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String("ab") }), nil},
		{"session name 64", valAssumeRole(func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String(valRep("a", 64)) }), nil},
		{"session name 65", valAssumeRole(func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String(valRep("a", 65)) }),
			[]string{`role_session_name: ` + vNameRule + ` (got "` + valRep("a", 64) + vEllipsis + `")`}},
		{"session name all punctuation", valAssumeRole(func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String("a_+=,.@-") }), nil},
		{"session name space", valAssumeRole(func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String("alice smith") }),
			[]string{`role_session_name: ` + vNameRule + ` (got "alice smith")`}},
		{"session name non-ASCII letter", valAssumeRole(func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String("josé") }),
			[]string{`role_session_name: ` + vNameRule + ` (got "josé")`}},
		{"session name nil", valAssumeRole(func(in *sts.AssumeRoleInput) { in.RoleSessionName = nil }),
			[]string{"role_session_name: required"}},

		// duration
		{"duration 899", valAssumeRole(func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(899) }),
			[]string{`duration: 15m..12h for AssumeRole (got "14m59s")`}},
		{"duration 900", valAssumeRole(func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(900) }), nil},
		{"duration 43200", valAssumeRole(func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(43200) }), nil},
		{"duration 43201", valAssumeRole(func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(43201) }),
			[]string{`duration: 15m..12h for AssumeRole (got "12h0m1s")`}},
		{"duration negative", valAssumeRole(func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(-1) }),
			[]string{`duration: 15m..12h for AssumeRole (got "-1s")`}},
		{"duration unset", valAssumeRole(func(in *sts.AssumeRoleInput) { in.DurationSeconds = nil }), nil},

		// external_id
		{"external id 1", valAssumeRole(func(in *sts.AssumeRoleInput) { in.ExternalId = aws.String("a") }),
			[]string{`external_id: 2..1224 characters of [\w+=,.@:/-] (got "a")`}},
		{"external id 2", valAssumeRole(func(in *sts.AssumeRoleInput) { in.ExternalId = aws.String("ab") }), nil},
		{"external id 1224", valAssumeRole(func(in *sts.AssumeRoleInput) { in.ExternalId = aws.String(valRep("x", 1224)) }), nil},
		{"external id 1225", valAssumeRole(func(in *sts.AssumeRoleInput) { in.ExternalId = aws.String(valRep("x", 1225)) }),
			[]string{`external_id: 2..1224 characters of [\w+=,.@:/-] (got "` + valRep("x", 64) + vEllipsis + `")`}},
		{"external id empty", valAssumeRole(func(in *sts.AssumeRoleInput) { in.ExternalId = aws.String("") }),
			[]string{`external_id: 2..1224 characters of [\w+=,.@:/-] (got "")`}},
		{"external id quote", valAssumeRole(func(in *sts.AssumeRoleInput) { in.ExternalId = aws.String(`a"b`) }),
			[]string{`external_id: 2..1224 characters of [\w+=,.@:/-] (got "a\"b")`}},

		// mfa_serial, mfa_token_code
		{"serial 8", valAssumeRole(func(in *sts.AssumeRoleInput) { in.SerialNumber = aws.String("GAHT1234") }),
			[]string{`mfa_serial: 9..256 characters of [\w+=/:,.@-] (got "GAHT1234")`}},
		{"serial 9", valAssumeRole(func(in *sts.AssumeRoleInput) { in.SerialNumber = aws.String("GAHT12345") }), nil},
		{"serial 256", valAssumeRole(func(in *sts.AssumeRoleInput) { in.SerialNumber = aws.String(valRep("S", 256)) }), nil},
		{"serial 257", valAssumeRole(func(in *sts.AssumeRoleInput) { in.SerialNumber = aws.String(valRep("S", 257)) }),
			[]string{`mfa_serial: 9..256 characters of [\w+=/:,.@-] (got "` + valRep("S", 64) + vEllipsis + `")`}},
		{"serial space", valAssumeRole(func(in *sts.AssumeRoleInput) { in.SerialNumber = aws.String("GAHT 12345") }),
			[]string{`mfa_serial: 9..256 characters of [\w+=/:,.@-] (got "GAHT 12345")`}},
		{"token code 5", valAssumeRole(func(in *sts.AssumeRoleInput) { in.TokenCode = aws.String("12345") }),
			[]string{"mfa_token_code: exactly 6 digits (got 5 characters)"}},
		{"token code 7", valAssumeRole(func(in *sts.AssumeRoleInput) { in.TokenCode = aws.String("1234567") }),
			[]string{"mfa_token_code: exactly 6 digits (got 7 characters)"}},
		{"token code letter", valAssumeRole(func(in *sts.AssumeRoleInput) { in.TokenCode = aws.String("12345x") }),
			[]string{"mfa_token_code: exactly 6 digits (got 6 characters)"}},
		{"token code fullwidth digits", valAssumeRole(func(in *sts.AssumeRoleInput) { in.TokenCode = aws.String("１２３４５６") }),
			[]string{"mfa_token_code: exactly 6 digits (got 6 characters)"}},
		{"token code 1", valAssumeRole(func(in *sts.AssumeRoleInput) { in.TokenCode = aws.String("1") }),
			[]string{"mfa_token_code: exactly 6 digits (got 1 character)"}},
		{"token code empty", valAssumeRole(func(in *sts.AssumeRoleInput) { in.TokenCode = aws.String("") }),
			[]string{"mfa_token_code: exactly 6 digits (got 0 characters)"}},

		// source_identity
		{"source identity aws:", valAssumeRole(func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String("aws:alice") }),
			[]string{`source_identity: must not start with "aws:", which AWS reserves (got "aws:alice")`}},
		{"source identity AWS:", valAssumeRole(func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String("AwS:alice") }),
			[]string{`source_identity: must not start with "aws:", which AWS reserves (got "AwS:alice")`}},
		{"source identity awsome", valAssumeRole(func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String("awsome") }), nil},
		{"source identity 1", valAssumeRole(func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String("a") }),
			[]string{`source_identity: ` + vNameRule + ` (got "a")`}},
		{"source identity 64", valAssumeRole(func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String(valRep("i", 64)) }), nil},
		{"source identity 65", valAssumeRole(func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String(valRep("i", 65)) }),
			[]string{`source_identity: ` + vNameRule + ` (got "` + valRep("i", 64) + vEllipsis + `")`}},

		// policy
		{"policy empty", valAssumeRole(func(in *sts.AssumeRoleInput) { in.Policy = aws.String("") }),
			[]string{"policy: 1..2048 characters (got 0 characters)"}},
		{"policy 1", valAssumeRole(func(in *sts.AssumeRoleInput) { in.Policy = aws.String("{") }), nil},
		{"policy 2048", valAssumeRole(func(in *sts.AssumeRoleInput) { in.Policy = aws.String(valRep("x", 2048)) }), nil},
		{"policy 2049", valAssumeRole(func(in *sts.AssumeRoleInput) { in.Policy = aws.String(valRep("x", 2049)) }),
			[]string{"policy: 1..2048 characters (got 2049 characters)"}},
		{"policy whitespace and Latin-1", valAssumeRole(func(in *sts.AssumeRoleInput) {
			in.Policy = aws.String("{\t\"Sid\": \"é ÿ ~\"\r\n}")
		}), nil},
		{"policy typographic quote", valAssumeRole(func(in *sts.AssumeRoleInput) { in.Policy = aws.String(`{"Effect":“Allow”}`) }),
			[]string{"policy: " + vCharsRule + " (got 18 characters, U+201C at character 11)"}},
		{"policy control character", valAssumeRole(func(in *sts.AssumeRoleInput) { in.Policy = aws.String("{\x00}") }),
			[]string{"policy: " + vCharsRule + " (got 3 characters, U+0000 at character 2)"}},
		{"policy long and emoji", valAssumeRole(func(in *sts.AssumeRoleInput) { in.Policy = aws.String(valRep("x", 2048) + "😀") }),
			[]string{
				"policy: 1..2048 characters (got 2049 characters)",
				"policy: " + vCharsRule + " (got 2049 characters, U+1F600 at character 2049)",
			}},

		// policy_arns
		{"policy arns 10", valAssumeRole(func(in *sts.AssumeRoleInput) { in.PolicyArns = valPolicyARNs(10) }), nil},
		{"policy arns 11", valAssumeRole(func(in *sts.AssumeRoleInput) { in.PolicyArns = valPolicyARNs(11) }),
			[]string{"policy_arns: at most 10 policy ARNs (got 11)"}},
		{"policy arn 19", valAssumeRole(func(in *sts.AssumeRoleInput) {
			in.PolicyArns = valPolicyARNs(3)
			in.PolicyArns[2].Arn = aws.String(vShortARN + "y")
		}), []string{`policy_arns[2]: 20..2048 characters (got "arn:aws:iam::aws:xy")`}},
		{"policy arn 20", valAssumeRole(func(in *sts.AssumeRoleInput) {
			in.PolicyArns[0].Arn = aws.String(vShortARN + "yz")
		}), nil},
		{"policy arn 2049", valAssumeRole(func(in *sts.AssumeRoleInput) { in.PolicyArns[0].Arn = aws.String(valRep("a", 2049)) }),
			[]string{`policy_arns[0]: 20..2048 characters (got "` + valRep("a", 64) + vEllipsis + `")`}},
		{"policy arn nil", valAssumeRole(func(in *sts.AssumeRoleInput) { in.PolicyArns[0].Arn = nil }),
			[]string{"policy_arns[0]: required"}},

		// tags
		{"tags 50", valAssumeRole(func(in *sts.AssumeRoleInput) { in.Tags = append(in.Tags, valMoreTags(48)...) }), nil},
		{"tags 51", valAssumeRole(func(in *sts.AssumeRoleInput) { in.Tags = append(in.Tags, valMoreTags(49)...) }),
			[]string{"tags: at most 50 tags (got 51)"}},
		{"tag key 128", valAssumeRole(func(in *sts.AssumeRoleInput) { in.Tags[1].Key = aws.String(valRep("k", 128)) }), nil},
		{"tag key 129", valAssumeRole(func(in *sts.AssumeRoleInput) { in.Tags[1].Key = aws.String(valRep("k", 129)) }),
			[]string{`tags[1].key: ` + vKeyRule + ` (got "` + valRep("k", 64) + vEllipsis + `")`}},
		{"tag key empty", valAssumeRole(func(in *sts.AssumeRoleInput) { in.Tags[1].Key = aws.String("") }),
			[]string{`tags[1].key: ` + vKeyRule + ` (got "")`}},
		{"tag key bad character", valAssumeRole(func(in *sts.AssumeRoleInput) { in.Tags[1].Key = aws.String("cost#center") }),
			[]string{`tags[1].key: ` + vKeyRule + ` (got "cost#center")`}},
		{"tag key nil", valAssumeRole(func(in *sts.AssumeRoleInput) { in.Tags[1].Key = nil }),
			[]string{"tags[1].key: required"}},
		{"tag value 0", valAssumeRole(func(in *sts.AssumeRoleInput) { in.Tags[1].Value = aws.String("") }), nil},
		{"tag value 256", valAssumeRole(func(in *sts.AssumeRoleInput) { in.Tags[1].Value = aws.String(valRep("v", 256)) }), nil},
		{"tag value 257", valAssumeRole(func(in *sts.AssumeRoleInput) { in.Tags[1].Value = aws.String(valRep("v", 257)) }),
			[]string{`tags[1].value: ` + vValueRule + ` (got "` + valRep("v", 64) + vEllipsis + `")`}},
		{"tag value bad character", valAssumeRole(func(in *sts.AssumeRoleInput) { in.Tags[1].Value = aws.String("a&b") }),
			[]string{`tags[1].value: ` + vValueRule + ` (got "a&b")`}},
		{"tag value nil", valAssumeRole(func(in *sts.AssumeRoleInput) { in.Tags[1].Value = nil }),
			[]string{"tags[1].value: required"}},
		{"tag letters, spaces, numbers and punctuation", valAssumeRole(func(in *sts.AssumeRoleInput) {
			in.Tags = append(in.Tags, valTag("Équipe Ω_.:/=+-@", "Été ٣ 2026\u00a0東京"))
		}), nil},
		{"tag key duplicate ignoring case", valAssumeRole(func(in *sts.AssumeRoleInput) {
			in.Tags = append(in.Tags, valTag("team", "x"), valTag("PROJECT", "y"))
		}), []string{
			`tags[2].key: unique among tags, ignoring case (got "team")`,
			`tags[3].key: unique among tags, ignoring case (got "PROJECT")`,
		}},

		// transitive_tag_keys
		{"transitive keys 50", valAssumeRole(func(in *sts.AssumeRoleInput) { in.TransitiveTagKeys = valRepeatKey("Project", 50) }), nil},
		{"transitive keys 51", valAssumeRole(func(in *sts.AssumeRoleInput) { in.TransitiveTagKeys = valRepeatKey("Project", 51) }),
			[]string{"transitive_tag_keys: at most 50 keys (got 51)"}},
		{"transitive key not a tag", valAssumeRole(func(in *sts.AssumeRoleInput) {
			in.TransitiveTagKeys = []string{"TEAM", "Owner"}
		}), []string{`transitive_tag_keys[1]: one of the keys in tags (got "Owner")`}},
		{"transitive key without tags", valAssumeRole(func(in *sts.AssumeRoleInput) { in.Tags = nil }),
			[]string{`transitive_tag_keys[0]: one of the keys in tags (got "project")`}},
		{"transitive key empty", valAssumeRole(func(in *sts.AssumeRoleInput) { in.TransitiveTagKeys = []string{""} }),
			[]string{`transitive_tag_keys[0]: ` + vKeyRule + ` (got "")`}},
		{"transitive key 129", valAssumeRole(func(in *sts.AssumeRoleInput) { in.TransitiveTagKeys = []string{valRep("k", 129)} }),
			[]string{`transitive_tag_keys[0]: ` + vKeyRule + ` (got "` + valRep("k", 64) + vEllipsis + `")`}},

		// provided_contexts
		{"contexts 5", valAssumeRole(func(in *sts.AssumeRoleInput) { in.ProvidedContexts = valContexts(5) }), nil},
		{"contexts 6", valAssumeRole(func(in *sts.AssumeRoleInput) { in.ProvidedContexts = valContexts(6) }),
			[]string{"provided_contexts: 1..5 contexts (got 6)"}},
		{"contexts empty list", valAssumeRole(func(in *sts.AssumeRoleInput) { in.ProvidedContexts = []types.ProvidedContext{} }),
			[]string{"provided_contexts: 1..5 contexts (got 0)"}},
		{"contexts nil", valAssumeRole(func(in *sts.AssumeRoleInput) { in.ProvidedContexts = nil }), nil},
		{"context assertion 3 and 4", valAssumeRole(func(in *sts.AssumeRoleInput) {
			in.ProvidedContexts = valContexts(2)
			in.ProvidedContexts[0].ContextAssertion = aws.String("abc")
			in.ProvidedContexts[1].ContextAssertion = aws.String("abcd")
		}), []string{"provided_contexts[0].context_assertion: 4..2048 characters (got 3 characters)"}},
		{"context assertion 2049", valAssumeRole(func(in *sts.AssumeRoleInput) {
			in.ProvidedContexts[0].ContextAssertion = aws.String(valRep("c", 2049))
		}), []string{"provided_contexts[0].context_assertion: 4..2048 characters (got 2049 characters)"}},
		{"context provider short", valAssumeRole(func(in *sts.AssumeRoleInput) {
			in.ProvidedContexts[0].ProviderArn = aws.String(vShortARN)
		}), []string{`provided_contexts[0].provider_arn: 20..2048 characters (got "arn:aws:iam::aws:x")`}},
		{"context members nil", valAssumeRole(func(in *sts.AssumeRoleInput) {
			in.ProvidedContexts = []types.ProvidedContext{{}}
		}), []string{
			"provided_contexts[0].provider_arn: required",
			"provided_contexts[0].context_assertion: required",
		}},

		// minimum_session_token_size
		{"min token size 4096", valAssumeRole(func(in *sts.AssumeRoleInput) { in.MinimumSessionTokenSize = aws.Int32(4096) }), nil},
		{"min token size 4097", valAssumeRole(func(in *sts.AssumeRoleInput) { in.MinimumSessionTokenSize = aws.Int32(4097) }),
			[]string{`minimum_session_token_size: 0..4096 bytes (got "4097")`}},
		{"min token size negative", valAssumeRole(func(in *sts.AssumeRoleInput) { in.MinimumSessionTokenSize = aws.Int32(-1) }),
			[]string{`minimum_session_token_size: 0..4096 bytes (got "-1")`}},

		// Everything at once, in a stable order: the parameters' order, then
		// list elements in theirs.
		{"many problems", valAssumeRole(func(in *sts.AssumeRoleInput) {
			in.RoleArn = nil
			in.RoleSessionName = aws.String("a")
			in.DurationSeconds = aws.Int32(60)
			in.ExternalId = aws.String("a")
			in.SerialNumber = aws.String("x")
			in.TokenCode = aws.String("12")
			in.SourceIdentity = aws.String("aws:x")
			in.Policy = aws.String("")
			in.PolicyArns = append(valPolicyARNs(10), types.PolicyDescriptorType{})
			in.Tags = append(valMoreTags(50), valTag("K0", "v"))
			in.TransitiveTagKeys = []string{"nope"}
			in.ProvidedContexts = []types.ProvidedContext{}
			in.MinimumSessionTokenSize = aws.Int32(5000)
		}), []string{
			"role_arn: required",
			`role_session_name: 2..64 characters of [\w+=,.@-] (got "a")`,
			`duration: 15m..12h for AssumeRole (got "1m0s")`,
			`external_id: 2..1224 characters of [\w+=,.@:/-] (got "a")`,
			`mfa_serial: 9..256 characters of [\w+=/:,.@-] (got "x")`,
			"mfa_token_code: exactly 6 digits (got 2 characters)",
			`source_identity: must not start with "aws:", which AWS reserves (got "aws:x")`,
			"policy: 1..2048 characters (got 0 characters)",
			"policy_arns: at most 10 policy ARNs (got 11)",
			"policy_arns[10]: required",
			"tags: at most 50 tags (got 51)",
			`tags[50].key: unique among tags, ignoring case (got "K0")`,
			`transitive_tag_keys[0]: one of the keys in tags (got "nope")`,
			"provided_contexts: 1..5 contexts (got 0)",
			`minimum_session_token_size: 0..4096 bytes (got "5000")`,
		}},
	})
}

func valRepeatKey(key string, n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = key
	}
	return ks
}

func TestValidateAssumeRoleWithWebIdentity(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"valid", validateAssumeRoleWithWebIdentity(valValidWebIdentity()), nil},
		{"valid minimal", validateAssumeRoleWithWebIdentity(&sts.AssumeRoleWithWebIdentityInput{
			RoleArn: aws.String(vRoleARN), RoleSessionName: aws.String("ci"), WebIdentityToken: aws.String("abcd"),
		}), nil},
		{"nil input", validateAssumeRoleWithWebIdentity(nil), []string{
			"role_arn: required",
			"role_session_name: required",
			"web_identity_token: required",
		}},
		{"role arn", valWebIdentity(func(in *sts.AssumeRoleWithWebIdentityInput) { in.RoleArn = aws.String("role/imdsd") }),
			[]string{`role_arn: ` + vRoleShape + ` (got "role/imdsd")`}},
		{"session name", valWebIdentity(func(in *sts.AssumeRoleWithWebIdentityInput) { in.RoleSessionName = aws.String("ci job") }),
			[]string{`role_session_name: ` + vNameRule + ` (got "ci job")`}},
		{"token 3", valWebIdentity(func(in *sts.AssumeRoleWithWebIdentityInput) { in.WebIdentityToken = aws.String("abc") }),
			[]string{"web_identity_token: 4..20000 characters (got 3 characters)"}},
		{"token 4", valWebIdentity(func(in *sts.AssumeRoleWithWebIdentityInput) { in.WebIdentityToken = aws.String("abcd") }), nil},
		{"token 20000", valWebIdentity(func(in *sts.AssumeRoleWithWebIdentityInput) { in.WebIdentityToken = aws.String(valRep("t", 20000)) }), nil},
		{"token 20001", valWebIdentity(func(in *sts.AssumeRoleWithWebIdentityInput) { in.WebIdentityToken = aws.String(valRep("t", 20001)) }),
			[]string{"web_identity_token: 4..20000 characters (got 20001 characters)"}},
		{"token empty", valWebIdentity(func(in *sts.AssumeRoleWithWebIdentityInput) { in.WebIdentityToken = aws.String("") }),
			[]string{"web_identity_token: required"}},
		{"provider 3", valWebIdentity(func(in *sts.AssumeRoleWithWebIdentityInput) { in.ProviderId = aws.String("www") }),
			[]string{`provider_id: 4..2048 characters (got "www")`}},
		{"provider 2048", valWebIdentity(func(in *sts.AssumeRoleWithWebIdentityInput) { in.ProviderId = aws.String(valRep("p", 2048)) }), nil},
		{"provider 2049", valWebIdentity(func(in *sts.AssumeRoleWithWebIdentityInput) { in.ProviderId = aws.String(valRep("p", 2049)) }),
			[]string{`provider_id: 4..2048 characters (got "` + valRep("p", 64) + vEllipsis + `")`}},
		{"duration 43200", valWebIdentity(func(in *sts.AssumeRoleWithWebIdentityInput) { in.DurationSeconds = aws.Int32(43200) }), nil},
		{"duration 43201", valWebIdentity(func(in *sts.AssumeRoleWithWebIdentityInput) { in.DurationSeconds = aws.Int32(43201) }),
			[]string{`duration: 15m..12h for AssumeRoleWithWebIdentity (got "12h0m1s")`}},
		{"duration 899", valWebIdentity(func(in *sts.AssumeRoleWithWebIdentityInput) { in.DurationSeconds = aws.Int32(899) }),
			[]string{`duration: 15m..12h for AssumeRoleWithWebIdentity (got "14m59s")`}},
		{"policy 2049", valWebIdentity(func(in *sts.AssumeRoleWithWebIdentityInput) { in.Policy = aws.String(valRep(" ", 2049)) }),
			[]string{"policy: 1..2048 characters (got 2049 characters)"}},
		{"policy arns 11", valWebIdentity(func(in *sts.AssumeRoleWithWebIdentityInput) { in.PolicyArns = valPolicyARNs(11) }),
			[]string{"policy_arns: at most 10 policy ARNs (got 11)"}},
		{"min token size", valWebIdentity(func(in *sts.AssumeRoleWithWebIdentityInput) { in.MinimumSessionTokenSize = aws.Int32(4097) }),
			[]string{`minimum_session_token_size: 0..4096 bytes (got "4097")`}},
	})
}

func TestValidateAssumeRoleWithSAML(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"valid", validateAssumeRoleWithSAML(valValidSAML()), nil},
		{"nil input", validateAssumeRoleWithSAML(nil), []string{
			"role_arn: required",
			"saml_principal_arn: required",
			"saml_assertion: required",
		}},
		{"principal is a role", valSAML(func(in *sts.AssumeRoleWithSAMLInput) { in.PrincipalArn = aws.String(vRoleARN) }),
			[]string{`saml_principal_arn: ` + vSAMLShape + ` (got "` + vRoleARN + `")`}},
		{"principal in China", valSAML(func(in *sts.AssumeRoleWithSAMLInput) {
			in.PrincipalArn = aws.String("arn:aws-cn:iam::123456789012:saml-provider/ADFS.corp")
		}), nil},
		{"principal 2049", valSAML(func(in *sts.AssumeRoleWithSAMLInput) {
			in.PrincipalArn = aws.String("arn:aws:iam::123456789012:saml-provider/" + valRep("n", 2049-40))
		}), []string{`saml_principal_arn: ` + vSAMLShape + ` (got "arn:aws:iam::123456789012:saml-provider/` + valRep("n", 24) + vEllipsis + `")`}},
		{"role arn nil", valSAML(func(in *sts.AssumeRoleWithSAMLInput) { in.RoleArn = nil }), []string{"role_arn: required"}},
		{"assertion 3", valSAML(func(in *sts.AssumeRoleWithSAMLInput) { in.SAMLAssertion = aws.String("PHN") }),
			[]string{"saml_assertion: 4..100000 characters (got 3 characters)"}},
		{"assertion 100000", valSAML(func(in *sts.AssumeRoleWithSAMLInput) { in.SAMLAssertion = aws.String(valRep("A", 100000)) }), nil},
		{"assertion 100001", valSAML(func(in *sts.AssumeRoleWithSAMLInput) { in.SAMLAssertion = aws.String(valRep("A", 100001)) }),
			[]string{"saml_assertion: 4..100000 characters (got 100001 characters)"}},
		{"duration 900", valSAML(func(in *sts.AssumeRoleWithSAMLInput) { in.DurationSeconds = aws.Int32(900) }), nil},
		{"duration 899", valSAML(func(in *sts.AssumeRoleWithSAMLInput) { in.DurationSeconds = aws.Int32(899) }),
			[]string{`duration: 15m..12h for AssumeRoleWithSAML (got "14m59s")`}},
		{"duration 43201", valSAML(func(in *sts.AssumeRoleWithSAMLInput) { in.DurationSeconds = aws.Int32(43201) }),
			[]string{`duration: 15m..12h for AssumeRoleWithSAML (got "12h0m1s")`}},
		{"policy bad character", valSAML(func(in *sts.AssumeRoleWithSAMLInput) { in.Policy = aws.String("{\u2028}") }),
			[]string{"policy: " + vCharsRule + " (got 3 characters, U+2028 at character 2)"}},
		{"policy arn short", valSAML(func(in *sts.AssumeRoleWithSAMLInput) { in.PolicyArns[0].Arn = aws.String(vShortARN) }),
			[]string{`policy_arns[0]: 20..2048 characters (got "arn:aws:iam::aws:x")`}},
	})
}

func TestValidateGetSessionToken(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"valid", validateGetSessionToken(valValidSessionToken()), nil},
		{"nil input", validateGetSessionToken(nil), nil},
		{"duration 899", valSessionToken(func(in *sts.GetSessionTokenInput) { in.DurationSeconds = aws.Int32(899) }),
			[]string{`duration: 15m..36h for GetSessionToken (got "14m59s")`}},
		{"duration 900", valSessionToken(func(in *sts.GetSessionTokenInput) { in.DurationSeconds = aws.Int32(900) }), nil},
		{"duration 129600", valSessionToken(func(in *sts.GetSessionTokenInput) { in.DurationSeconds = aws.Int32(129600) }), nil},
		{"duration 129601", valSessionToken(func(in *sts.GetSessionTokenInput) { in.DurationSeconds = aws.Int32(129601) }),
			[]string{`duration: 15m..36h for GetSessionToken (got "36h0m1s")`}},
		{"serial", valSessionToken(func(in *sts.GetSessionTokenInput) { in.SerialNumber = aws.String("arn:aws:iam::1:mfa/a b") }),
			[]string{`mfa_serial: 9..256 characters of [\w+=/:,.@-] (got "arn:aws:iam::1:mfa/a b")`}},
		{"token code", valSessionToken(func(in *sts.GetSessionTokenInput) { in.TokenCode = aws.String("12 456") }),
			[]string{"mfa_token_code: exactly 6 digits (got 6 characters)"}},
		{"min token size", valSessionToken(func(in *sts.GetSessionTokenInput) { in.MinimumSessionTokenSize = aws.Int32(4097) }),
			[]string{`minimum_session_token_size: 0..4096 bytes (got "4097")`}},
	})
}

func TestValidateGetFederationToken(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"valid", validateGetFederationToken(valValidFederation()), nil},
		{"valid with managed policies only", valFederation(func(in *sts.GetFederationTokenInput) { in.Policy = nil }), nil},
		{"valid with an inline policy only", valFederation(func(in *sts.GetFederationTokenInput) { in.PolicyArns = nil }), nil},
		{"nil input", validateGetFederationToken(nil), []string{"federation_name: required"}},
		// STS accepts these; FederationToken.Warnings tells the user.
		{"no policies", valFederation(func(in *sts.GetFederationTokenInput) { in.Policy, in.PolicyArns = nil, nil }), nil},
		{"no policies, empty list", valFederation(func(in *sts.GetFederationTokenInput) {
			in.Policy, in.PolicyArns = nil, []types.PolicyDescriptorType{}
		}), nil},
		{"name 1", valFederation(func(in *sts.GetFederationTokenInput) { in.Name = aws.String("a") }),
			[]string{`federation_name: 2..32 characters of [\w+=,.@-] (got "a")`}},
		{"name 2", valFederation(func(in *sts.GetFederationTokenInput) { in.Name = aws.String("ab") }), nil},
		{"name 32", valFederation(func(in *sts.GetFederationTokenInput) { in.Name = aws.String(valRep("n", 32)) }), nil},
		{"name 33", valFederation(func(in *sts.GetFederationTokenInput) { in.Name = aws.String(valRep("n", 33)) }),
			[]string{`federation_name: 2..32 characters of [\w+=,.@-] (got "` + valRep("n", 33) + `")`}},
		{"name slash", valFederation(func(in *sts.GetFederationTokenInput) { in.Name = aws.String("corp/alice") }),
			[]string{`federation_name: 2..32 characters of [\w+=,.@-] (got "corp/alice")`}},
		{"name nil", valFederation(func(in *sts.GetFederationTokenInput) { in.Name = nil }),
			[]string{"federation_name: required"}},
		{"duration 129600", valFederation(func(in *sts.GetFederationTokenInput) { in.DurationSeconds = aws.Int32(129600) }), nil},
		{"duration 129601", valFederation(func(in *sts.GetFederationTokenInput) { in.DurationSeconds = aws.Int32(129601) }),
			[]string{`duration: 15m..36h for GetFederationToken (got "36h0m1s")`}},
		{"duration 899", valFederation(func(in *sts.GetFederationTokenInput) { in.DurationSeconds = aws.Int32(899) }),
			[]string{`duration: 15m..36h for GetFederationToken (got "14m59s")`}},
		{"policy 2049", valFederation(func(in *sts.GetFederationTokenInput) { in.Policy = aws.String(valRep("x", 2049)) }),
			[]string{"policy: 1..2048 characters (got 2049 characters)"}},
		{"tags 51 with a duplicate", valFederation(func(in *sts.GetFederationTokenInput) {
			in.Tags = append(in.Tags, valMoreTags(49)...)
			in.Tags = append(in.Tags, valTag("project", ""))
		}), []string{
			"tags: at most 50 tags (got 51)",
			`tags[50].key: unique among tags, ignoring case (got "project")`,
		}},
		{"min token size", valFederation(func(in *sts.GetFederationTokenInput) { in.MinimumSessionTokenSize = aws.Int32(-5) }),
			[]string{`minimum_session_token_size: 0..4096 bytes (got "-5")`}},
	})
}

// TestValidateSecretsNeverShown puts a marker into every secret and checks
// that neither the messages nor the fieldError values carry any of it.
func TestValidateSecretsNeverShown(t *testing.T) {
	const marker = "hunter2"
	for _, tc := range []struct {
		name  string
		err   error
		field string
	}{
		{"token code", valAssumeRole(func(in *sts.AssumeRoleInput) { in.TokenCode = aws.String("424242x") }), "mfa_token_code"},
		{"token code of GetSessionToken", valSessionToken(func(in *sts.GetSessionTokenInput) {
			in.TokenCode = aws.String(marker)
		}), "mfa_token_code"},
		{"web identity token", valWebIdentity(func(in *sts.AssumeRoleWithWebIdentityInput) {
			in.WebIdentityToken = aws.String(marker + valRep("t", 20000))
		}), "web_identity_token"},
		{"saml assertion", valSAML(func(in *sts.AssumeRoleWithSAMLInput) {
			in.SAMLAssertion = aws.String(marker + valRep("A", 100000))
		}), "saml_assertion"},
		{"policy too long", valFederation(func(in *sts.GetFederationTokenInput) {
			in.Policy = aws.String(`{"aws:username":"` + marker + `"}` + valRep(" ", 2048))
		}), "policy"},
		{"policy bad character", valAssumeRole(func(in *sts.AssumeRoleInput) {
			in.Policy = aws.String(`{"aws:username":"` + marker + `”}`)
		}), "policy"},
		{"context assertion", valAssumeRole(func(in *sts.AssumeRoleInput) {
			in.ProvidedContexts[0].ContextAssertion = aws.String(marker + valRep("c", 2048))
		}), "provided_contexts[0].context_assertion"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fe *fieldError
			if !errors.As(tc.err, &fe) {
				t.Fatalf("err = %v, want a *fieldError", tc.err)
			}
			if fe.Field != tc.field {
				t.Errorf("Field = %q, want %q", fe.Field, tc.field)
			}
			for _, s := range []string{tc.err.Error(), fe.Value} {
				for _, secret := range []string{marker, "4242", "ttt", "AAA", "ccc"} {
					if strings.Contains(s, secret) {
						t.Errorf("%q shows the secret (%q)", s, secret)
					}
				}
			}
		})
	}
}

func TestFieldErrorAs(t *testing.T) {
	err := valAssumeRole(func(in *sts.AssumeRoleInput) {
		in.RoleSessionName = aws.String("a")
		in.TokenCode = aws.String("1")
	})
	var fe *fieldError
	if !errors.As(err, &fe) {
		t.Fatalf("errors.As(%v) = false, want true", err)
	}
	want := &fieldError{Field: "role_session_name", Value: "a", Rule: vNameRule}
	if diff := cmp.Diff(want, fe); diff != "" {
		t.Errorf("first fieldError (-want +got):\n%s", diff)
	}

	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("err is %T, want an errors.Join", err)
	}
	var got []fieldError
	for _, e := range joined.Unwrap() {
		var fe *fieldError
		if !errors.As(e, &fe) {
			t.Fatalf("joined error %v is %T, want *fieldError", e, e)
		}
		got = append(got, *fe)
	}
	wantAll := []fieldError{
		{Field: "role_session_name", Value: "a", Rule: vNameRule},
		{Field: "mfa_token_code", Value: "1 character", Rule: "exactly 6 digits"},
	}
	if diff := cmp.Diff(wantAll, got); diff != "" {
		t.Errorf("FieldErrors (-want +got):\n%s", diff)
	}
}

func TestFieldErrorError(t *testing.T) {
	for _, tc := range []struct {
		fe   fieldError
		want string
	}{
		{fieldError{Field: "role_session_name", Value: "a", Rule: vNameRule},
			`role_session_name: 2..64 characters of [\w+=,.@-] (got "a")`},
		{fieldError{Field: "role_arn", Rule: "required"}, "role_arn: required"},
		{fieldError{Field: "external_id", Value: "", Rule: "r"}, `external_id: r (got "")`},
		{fieldError{Field: "external_id", Value: "a\nb", Rule: "r"}, `external_id: r (got "a\nb")`},
		{fieldError{Field: "mfa_token_code", Value: "3 characters", Rule: "exactly 6 digits"},
			"mfa_token_code: exactly 6 digits (got 3 characters)"},
		{fieldError{Field: "policy_arns", Value: "11", Rule: "at most 10 policy ARNs"},
			"policy_arns: at most 10 policy ARNs (got 11)"},
		{fieldError{Field: "policy_arns[2]", Value: "x", Rule: "r"}, `policy_arns[2]: r (got "x")`},
	} {
		if got := tc.fe.Error(); got != tc.want {
			t.Errorf("%#v.Error() = %q, want %q", tc.fe, got, tc.want)
		}
	}
}

func TestValidateRoleSessionName(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" = valid
	}{
		{"ab", ""},
		{"imdsd-alice@laptop.local", ""},
		{"A_b+c=d,e.f@g-h", ""},
		{valRep("x", 64), ""},
		{"", `role_session_name: 2..64 characters of [\w+=,.@-] (got "")`},
		{"a", `role_session_name: 2..64 characters of [\w+=,.@-] (got "a")`},
		{valRep("x", 65), `role_session_name: 2..64 characters of [\w+=,.@-] (got "` + valRep("x", 64) + vEllipsis + `")`},
		{"alice/laptop", `role_session_name: 2..64 characters of [\w+=,.@-] (got "alice/laptop")`},
		{"ålice", `role_session_name: 2..64 characters of [\w+=,.@-] (got "ålice")`},
		{"a\xff", `role_session_name: 2..64 characters of [\w+=,.@-] (got "a\xff")`},
	} {
		err := validateRoleSessionName(tc.in)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("validateRoleSessionName(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if tc.want == "" && err != nil {
			t.Errorf("validateRoleSessionName(%q) = %#v, want untyped nil", tc.in, err)
		}
		var fe *fieldError
		if tc.want != "" && !errors.As(err, &fe) {
			t.Errorf("validateRoleSessionName(%q) is %T, want *fieldError", tc.in, err)
		}
	}
}

func TestDefaultRoleSessionName(t *testing.T) {
	for _, tc := range []struct{ user, host, want string }{
		{"alice", "laptop", "imdsd-alice@laptop"},
		{"alice", "laptop.example.com", "imdsd-alice@laptop.example.com"},
		{`CORP\alice`, "pc-7", "imdsd-CORP-alice@pc-7"},
		{"josé", "mac mini", "imdsd-jos-@mac-mini"},
		{"bob", "", "imdsd-bob"},
		{"", "host", "imdsd@host"},
		{"", "", "imdsd"},
		{"\xff\xfe", "h", "imdsd---@h"},
		{valRep("u", 100), "host", "imdsd-" + valRep("u", 58)},
		{valRep("u", 57), "host", "imdsd-" + valRep("u", 57) + "@"},
	} {
		got := DefaultRoleSessionName(tc.user, tc.host)
		if got != tc.want {
			t.Errorf("DefaultRoleSessionName(%q, %q) = %q, want %q", tc.user, tc.host, got, tc.want)
		}
		if err := validateRoleSessionName(got); err != nil {
			t.Errorf("DefaultRoleSessionName(%q, %q) = %q: %v", tc.user, tc.host, got, err)
		}
	}
}

func FuzzDefaultRoleSessionName(f *testing.F) {
	f.Add("alice", "laptop")
	f.Add("", "")
	f.Add(`CORP\alice`, "laptop.example.com")
	f.Add("ålice", "ホスト")
	f.Add("\xff", "\x00")
	f.Add(valRep("u", 70), valRep("h", 70))
	f.Add("a b", "😀")
	f.Fuzz(func(t *testing.T, user, host string) {
		got := DefaultRoleSessionName(user, host)
		if err := validateRoleSessionName(got); err != nil {
			t.Fatalf("DefaultRoleSessionName(%q, %q) = %q: %v", user, host, got, err)
		}
		if !strings.HasPrefix(got, "imdsd") {
			t.Errorf("DefaultRoleSessionName(%q, %q) = %q, want the imdsd prefix", user, host, got)
		}
		// A name that is already valid and short enough is kept as is.
		want := "imdsd-" + user + "@" + host
		if user != "" && host != "" && validateRoleSessionName(want) == nil && got != want {
			t.Errorf("DefaultRoleSessionName(%q, %q) = %q, want %q", user, host, got, want)
		}
	})
}

func TestValidateARNNameLength(t *testing.T) {
	role := func(name string) *sts.AssumeRoleInput {
		return &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/" + name), RoleSessionName: aws.String("session")}
	}
	if err := validateAssumeRole(role(strings.Repeat("n", 64))); err != nil {
		t.Errorf("64-character role name: %v", err)
	}
	if err := validateAssumeRole(role(strings.Repeat("n", 65))); err == nil || !strings.Contains(err.Error(), "an IAM role ARN such as") {
		t.Errorf("65-character role name: %v, want the role ARN rule", err)
	}
	saml := func(name string) *sts.AssumeRoleWithSAMLInput {
		return &sts.AssumeRoleWithSAMLInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/r"),
			PrincipalArn: aws.String("arn:aws:iam::123456789012:saml-provider/" + name), SAMLAssertion: aws.String("PHNhbWw+")}
	}
	if err := validateAssumeRoleWithSAML(saml(strings.Repeat("p", 128))); err != nil {
		t.Errorf("128-character provider name: %v", err)
	}
	if err := validateAssumeRoleWithSAML(saml(strings.Repeat("p", 129))); err == nil || !strings.Contains(err.Error(), "an IAM SAML provider ARN such as") {
		t.Errorf("129-character provider name: %v, want the provider ARN rule", err)
	}
}
