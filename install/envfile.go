package install

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// EnvironmentPath is the service's environment file on Linux, the unit's
// EnvironmentFile=: systemd reads it as root when the service starts, so it
// stays mode 0600 and the service's user needs no access. It holds the
// user's own lines (base credentials) and, between two marker lines, the
// variables an install writes (Spec.Env); install rewrites and uninstall
// removes only those lines.
const EnvironmentPath = "/etc/imdsd/environment"

// An EnvVar is one variable of the service's environment.
type EnvVar struct{ Name, Value string }

// The marker lines around the variables an install writes.
const (
	envBegin = "# BEGIN imdsd install: run flags kept out of the world-readable unit file\n"
	envEnd   = "# END imdsd install (imdsd install rewrites these lines, imdsd uninstall removes them)\n"
)

// checkEnvVar refuses what the environment file cannot carry unchanged:
// systemd ignores an assignment with an invalid name or invalid UTF-8, and
// one value per line keeps the marker lines unambiguous.
func checkEnvVar(v EnvVar) error {
	if !validEnvName(v.Name) {
		return fmt.Errorf("environment variable %q: not a valid name", v.Name)
	}
	if !utf8.ValidString(v.Value) || strings.ContainsAny(v.Value, "\x00\r\n") {
		return fmt.Errorf("%s: must be one line of UTF-8 text to go in %s; set it in the config file instead", v.Name, EnvironmentPath)
	}
	return nil
}

// validEnvName is systemd's env_name_is_valid: letters, digits and "_",
// not starting with a digit.
func validEnvName(s string) bool {
	for i, c := range s {
		if !(c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// quoteEnvValue writes v for systemd's environment-file parser: in double
// quotes, with only \ and " escaped. systemd expands nothing there (no $
// variables, no % specifiers), and every version since at least v219 reads
// \\ and \" back, while newer ones also unescape \$ and \` but older ones
// keep the backslash: so neither is escaped.
func quoteEnvValue(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// envBlock is the marker lines around vars, one NAME="value" line each; with
// hide, the values are left out (for --dry-run: they may be secrets).
func envBlock(vars []EnvVar, hide bool) string {
	if len(vars) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(envBegin)
	for _, v := range vars {
		if hide {
			fmt.Fprintf(&b, "%s=… (not shown: it may carry a secret)\n", v.Name)
		} else {
			fmt.Fprintf(&b, "%s=%s\n", v.Name, quoteEnvValue(v.Value))
		}
	}
	b.WriteString(envEnd)
	return b.String()
}

// cutEnvBlock splits an environment file into the user's lines and the
// block an install wrote ("" when there is none). A block without its end
// line runs to the end of the file.
func cutEnvBlock(content string) (rest, block string) {
	begin := strings.Index(content, envBegin)
	if begin < 0 || (begin > 0 && content[begin-1] != '\n') {
		return content, ""
	}
	end := len(content)
	if i := strings.Index(content[begin:], envEnd); i >= 0 {
		end = begin + i + len(envEnd)
	}
	return content[:begin] + content[end:], content[begin:end]
}

// readEnvFile is the environment file's content, "" when there is none.
func (h Host) readEnvFile() (string, error) {
	b, err := os.ReadFile(h.path(EnvironmentPath))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", EnvironmentPath, err)
	}
	return string(b), nil
}

// ServiceEnvironment is what the installed service will find in its
// environment apart from the variables an install writes: the user's own
// lines of its environment file, parsed as systemd parses them, and the
// variables systemd sets for the unit's directories (STATE_DIRECTORY,
// RUNTIME_DIRECTORY), which override them. It is empty where the service
// has no environment file (macOS, Windows). Reading the file needs root
// (mode 0600); when it cannot be read, the error comes with systemd's
// variables.
func (h Host) ServiceEnvironment() (map[string]string, error) {
	if h.GOOS != "linux" {
		return nil, nil
	}
	content, err := h.readEnvFile()
	rest, _ := cutEnvBlock(content)
	env := parseEnvFile(rest)
	env["STATE_DIRECTORY"], env["RUNTIME_DIRECTORY"] = StateDirectory, RuntimeDirectory
	return env, err
}

// setEnvBlock replaces the block of the environment file with block ("":
// removes it), keeping the user's lines. It writes through a temporary file
// renamed into place, mode 0600, and removes a file left empty.
func (h Host) setEnvBlock(block string) error {
	content, err := h.readEnvFile()
	if err != nil {
		return err
	}
	rest, _ := cutEnvBlock(content)
	if rest != "" && !strings.HasSuffix(rest, "\n") && block != "" {
		rest += "\n"
	}
	content = rest + block
	p := h.path(EnvironmentPath)
	if strings.TrimSpace(content) == "" {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", EnvironmentPath, err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", EnvironmentPath, err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".environment-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", EnvironmentPath, err)
	}
	defer os.Remove(f.Name()) // after a failure; the rename moves it otherwise
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o600) // CreateTemp's mode, whatever the umask
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", EnvironmentPath, err)
	}
	return nil
}

// parseEnvFile reads an environment file as systemd does (parse_env_file_internal
// of src/basic/env-file.c, v254 and later, then load_env_file's validity
// checks): KEY=VALUE lines; # and ; start a comment line; a value may be
// unquoted (trailing blanks dropped, \ escapes one character),
// 'single-quoted' (literal) or "double-quoted" (\" \\ \` \$ unescaped, any
// other backslash kept), and such parts join; nothing is expanded. A later
// assignment wins; one with an invalid name or invalid UTF-8 is ignored.
func parseEnvFile(content string) map[string]string {
	const (
		preKey = iota
		key
		preValue
		value
		valueEscape
		singleQuote
		doubleQuote
		doubleQuoteEscape
		comment
		commentEscape
	)
	vars := map[string]string{}
	var k, v []byte
	lastKeyBlank, lastValueBlank := -1, -1
	push := func(trimValue bool) {
		if lastKeyBlank >= 0 {
			k = k[:lastKeyBlank]
		}
		if trimValue && lastValueBlank >= 0 {
			v = v[:lastValueBlank]
		}
		if validEnvName(string(k)) && utf8.Valid(v) {
			vars[string(k)] = string(v)
		}
		k, v = nil, nil
	}
	blank := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	newline := func(c byte) bool { return c == '\n' || c == '\r' }
	state := preKey
	for i := 0; i < len(content); i++ {
		c := content[i]
		switch state {
		case preKey:
			if c == '#' || c == ';' {
				state = comment
			} else if !blank(c) {
				state, lastKeyBlank = key, -1
				k = append(k, c)
			}
		case key:
			switch {
			case newline(c):
				state, k = preKey, nil
			case c == '=':
				state, lastValueBlank = preValue, -1
			default:
				if !blank(c) {
					lastKeyBlank = -1
				} else if lastKeyBlank < 0 {
					lastKeyBlank = len(k)
				}
				k = append(k, c)
			}
		case preValue:
			switch {
			case newline(c):
				state = preKey
				push(false)
			case c == '\'':
				state = singleQuote
			case c == '"':
				state = doubleQuote
			case c == '\\':
				state = valueEscape
			case !blank(c):
				state = value
				v = append(v, c)
			}
		case value:
			switch {
			case newline(c):
				state = preKey
				push(true)
			case c == '\\':
				state, lastValueBlank = valueEscape, -1
			default:
				if !blank(c) {
					lastValueBlank = -1
				} else if lastValueBlank < 0 {
					lastValueBlank = len(v)
				}
				v = append(v, c)
			}
		case valueEscape:
			state = value
			if !newline(c) { // an escaped newline joins the lines
				v = append(v, c)
			}
		case singleQuote:
			if c == '\'' {
				state = preValue
			} else {
				v = append(v, c)
			}
		case doubleQuote:
			switch c {
			case '"':
				state = preValue
			case '\\':
				state = doubleQuoteEscape
			default:
				v = append(v, c)
			}
		case doubleQuoteEscape:
			state = doubleQuote
			if strings.IndexByte("\"\\`$", c) >= 0 {
				v = append(v, c)
			} else if c != '\n' {
				v = append(v, '\\', c)
			}
		case comment:
			if c == '\\' {
				state = commentEscape
			} else if newline(c) {
				state = preKey
			}
		case commentEscape:
			state = comment
			if newline(c) {
				state = preKey
			}
		}
	}
	switch state {
	case preValue, value, valueEscape, singleQuote, doubleQuote, doubleQuoteEscape:
		push(state == value)
	}
	return vars
}

// SplitSecrets takes the flags that may carry secrets, the *-command ones
// (an MFA seed or a token on a command line), out of args, which flags parsed:
// every user can read the unit, so they become the service's environment
// variables, --NAME-command as IMDSD_NAME_COMMAND (how imdsd run reads
// them). A value that looks like a flag stays a value, and a final "--"
// is kept.
func SplitSecrets(flags *flag.FlagSet, args []string) (kept []string, env []EnvVar) {
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		f, n := flags.Lookup(name), 1 // n: the arguments of this flag
		if f == nil {                 // a final "--", which imdsd run accepts too
			kept = append(kept, args[i])
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !hasValue && !(ok && b.IsBoolFlag()) {
			n = min(2, len(args)-i)
			value = args[i+n-1]
		}
		if strings.HasSuffix(name, "-command") {
			env = append(env, EnvVar{Name: "IMDSD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")), Value: value})
		} else {
			kept = append(kept, args[i:i+n]...)
		}
		i += n - 1
	}
	return kept, env
}
