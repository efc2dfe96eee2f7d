package install

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseEnvFile pins the mirror of systemd's parser on the forms of
// systemd.exec(5) and the edge cases of env-file.c; make vmtest checks one
// written value with the real systemd (systemd-run -p EnvironmentFile=).
func TestParseEnvFile(t *testing.T) {
	content := "# a comment\n" +
		"; another\n" +
		"  PLAIN=a b  \n" +
		"SINGLE='it is $HOME %h \\n'\n" +
		"DOUBLE=\"say \\\"hi\\\" \\\\ \\$X \\` \\q\"\n" +
		"JOINED='a'\"b\"c\n" +
		"ESCAPED=a\\ b\\\nc\n" +
		"EMPTY=\n" +
		"QUOTE_ALONE=\"\"\n" +
		" SPACED_KEY =v\n" +
		"export NOT_VALID=1\n" +
		"1DIGIT=x\n" +
		"NOEQUALS\n" +
		"LATER=1\n" +
		"LATER=2\n" +
		"HASH=a#b\n" +
		"MULTI=\"line1\nline2\"\n" +
		"CRLF=x\r\n" +
		"LAST=\"unterminated"
	want := map[string]string{
		"PLAIN":       "a b",
		"SINGLE":      `it is $HOME %h \n`,
		"DOUBLE":      "say \"hi\" \\ $X ` \\q",
		"JOINED":      "abc",
		"ESCAPED":     "a bc",
		"EMPTY":       "",
		"QUOTE_ALONE": "",
		"SPACED_KEY":  "v",
		"LATER":       "2",
		"HASH":        "a#b",
		"MULTI":       "line1\nline2",
		"CRLF":        "x",
		"LAST":        "unterminated",
	}
	if diff := cmp.Diff(want, parseEnvFile(content)); diff != "" {
		t.Errorf("parseEnvFile (-want +got):\n%s", diff)
	}
}

// TestQuoteEnvValue: what install writes, systemd reads back unchanged,
// whatever the value holds (one line of UTF-8: checkEnvVar).
func TestQuoteEnvValue(t *testing.T) {
	values := []string{
		"", "plain", "two words", "  padded  ", `"double"`, `'single'`, `it's`,
		`$HOME ${HOME} $(id) ` + "`id`", `%h %n %%`, `back\slash \\ \"`, `trailing\`,
		`oathtool --totp -b "$(cat /etc/imdsd/totp)" # not a comment`, "tab\there", "ünïcødé ✓", `;semicolon`, "#hash",
	}
	for _, v := range values {
		line := "IMDSD_MFA_COMMAND=" + quoteEnvValue(v) + "\n"
		if got := parseEnvFile(line)["IMDSD_MFA_COMMAND"]; got != v {
			t.Errorf("value %q written as %q reads back as %q", v, line, got)
		}
	}
}

func TestEnvBlock(t *testing.T) {
	vars := []EnvVar{{"IMDSD_MFA_COMMAND", "a b"}, {"IMDSD_SAML_ASSERTION_COMMAND", `c "d"`}}
	block := envBlock(vars, false)
	want := envBegin + "IMDSD_MFA_COMMAND=\"a b\"\nIMDSD_SAML_ASSERTION_COMMAND=\"c \\\"d\\\"\"\n" + envEnd
	if block != want {
		t.Errorf("envBlock =\n%s\nwant\n%s", block, want)
	}
	if hidden := envBlock(vars, true); strings.Contains(hidden, "a b") || strings.Contains(hidden, `"d"`) {
		t.Errorf("envBlock(hide) shows a value:\n%s", hidden)
	}
	for _, tc := range []struct{ content, rest, block string }{
		{"A=1\n", "A=1\n", ""},
		{"A=1\n" + block + "B=2\n", "A=1\nB=2\n", block},
		{block, "", block},
		{"A=1\n" + envBegin + "X=1\n", "A=1\n", envBegin + "X=1\n"}, // no end line: to the end
		{"A=1 " + envBegin, "A=1 " + envBegin, ""},                  // not at a line's start
	} {
		rest, got := cutEnvBlock(tc.content)
		if rest != tc.rest || got != tc.block {
			t.Errorf("cutEnvBlock(%q) = %q, %q; want %q, %q", tc.content, rest, got, tc.rest, tc.block)
		}
	}
	if got := parseEnvFile("A=1\n" + block); got["IMDSD_SAML_ASSERTION_COMMAND"] != `c "d"` || got["A"] != "1" {
		t.Errorf("the file with the block reads as %q", got)
	}
}
