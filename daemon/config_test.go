package daemon

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Each broken file in testdata/bad and its exact messages: every problem
// of a file at once, each naming the file, the line and the key.
func TestConfigFileBad(t *testing.T) {
	tests := map[string][]string{
		"unknown-keys.yaml": {
			`testdata/bad/unknown-keys.yaml:2: unknown key "rolearn"; did you mean "role_arn"?`,
			`testdata/bad/unknown-keys.yaml:4: unknown key "log_levl"; did you mean "log_level"?`,
		},
		"wrong-types.yaml": {
			`testdata/bad/wrong-types.yaml:2: listen: must be a list such as [a, b] or one string (got int "8169")`,
			`testdata/bad/wrong-types.yaml:3: allow_short_duration: must be true or false (got str "yes")`,
			`testdata/bad/wrong-types.yaml:4: duration: must be a duration such as 1h or 90m (got int "3600")`,
			`testdata/bad/wrong-types.yaml:5: external_id: must be a string (got int "12345"); quote it if it looks like a number or boolean`,
			`testdata/bad/wrong-types.yaml:6: dev_lifetime: must be a duration such as 1h or 90m (got "forever")`,
			`testdata/bad/wrong-types.yaml:7: tags: must be a mapping such as {team: a} or a list such as [team=a] (got str "team")`,
			`testdata/bad/wrong-types.yaml:8: max_connections: must be a whole number such as 1024 (got str "lots")`,
		},
		"duplicate-key.yaml": {
			`testdata/bad/duplicate-key.yaml:3: region: set twice (first on line 2)`,
		},
		"not-a-mapping.yaml": {
			`testdata/bad/not-a-mapping.yaml:1: the file must be a mapping of keys to values, such as "source: dev"`,
		},
		"syntax.yaml": {
			`testdata/bad/syntax.yaml: yaml: line 1: did not find expected ',' or ']'`,
		},
		// The rest used to be ignored silently.
		"multi-document.yaml": {
			`testdata/bad/multi-document.yaml:3: a second YAML document: a config file is one mapping; merge its keys into the first and remove the "---" on line 3`,
		},
		// It used to mean the default address, silently.
		"empty-listen.yaml": {
			`testdata/bad/empty-listen.yaml:2: listen: must name at least one address such as [127.0.0.1:8169]; remove the key to use the default (got an empty list)`,
		},
		// -1h used to be reported as "at most 36h"; 0s meant the default.
		"negative-duration.yaml": {
			`testdata/bad/negative-duration.yaml:2: duration: must be a positive duration such as 1h or 90m (got "-1h")`,
			`testdata/bad/negative-duration.yaml:3: dev_lifetime: must be a positive duration such as 1h or 90m (got "0s")`,
		},
		// Values of 300 characters are echoed to 64 and "…".
		"huge.yaml": {
			`testdata/bad/huge.yaml:1: unknown key "` + strings.Repeat("k", 64) + `…"`,
			`testdata/bad/huge.yaml:2: external_id: must be a string (got float "` + strings.Repeat("1", 64) + `…"); quote it if it looks like a number or boolean`,
			`testdata/bad/huge.yaml:3: dev_lifetime: must be a duration such as 1h or 90m (got "` + strings.Repeat("x", 64) + `…")`,
			`testdata/bad/huge.yaml:4: max_connections: must be a whole number such as 1024 (got str "` + strings.Repeat("9", 64) + `…")`,
			`testdata/bad/huge.yaml:5: tags: value of ` + strings.Repeat("t", 64) + `… must be a string (got a list); quote it if it looks like a number or boolean`,
		},
		"nested.yaml": {
			`testdata/bad/nested.yaml:1: listen: item on line 1 must be a string (got a mapping); quote it if it looks like a number or boolean`,
			`testdata/bad/nested.yaml:2: tags: value of team must be a string (got a list); quote it if it looks like a number or boolean`,
		},
	}
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) != len(tests) {
		t.Errorf("%d files in testdata/bad, %d in the table: keep them in step", len(files), len(tests))
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			path := "testdata/bad/" + name
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			c := defaultConfig()
			err = parseConfigFile(&c, f, path)
			if err == nil {
				t.Fatal("parseConfigFile() = nil error")
			}
			if diff := cmp.Diff(want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("parseConfigFile() error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigFileGood(t *testing.T) {
	tests := []struct {
		file string
		want func(*Config)
	}{
		{"all-kinds.yaml", func(want *Config) {
			want.Source, want.RoleARN = "assume-role", "arn:aws:iam::123456789012:role/dev"
			want.Listen = []string{"127.0.0.1:8169", "[::1]:8169"}
			want.TokenMode, want.AllowClient = "optional", []string{"172.17.0.0/16"}
			want.Duration, want.Tags = 2*time.Hour, []string{"env=prod", "team=platform"}
			want.TransitiveTagKeys, want.PolicyARNs = []string{"team"}, []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"}
			want.STSRegion, want.LogLevel, want.MaxConnections = "eu-west-1", "debug", 512
		}},
		// A single string is a list of one; it used to be refused.
		{"one-string-lists.yaml", func(want *Config) {
			want.Listen, want.AllowClient, want.MaxConnections = []string{"127.0.0.1:8169"}, []string{"172.17.0.0/16"}, 256
		}},
	}
	files, _ := filepath.Glob("testdata/good/*.yaml")
	if len(files) != len(tests) {
		t.Errorf("%d files in testdata/good, %d in the table: keep them in step", len(files), len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			path := "testdata/good/" + tc.file
			c, gotPath, err := loadConfigArgs([]string{"--config", path}, noEnv)
			if err != nil {
				t.Fatalf("loadConfig() = %v", err)
			}
			if gotPath != path {
				t.Errorf("config path = %q, want %q", gotPath, path)
			}
			want := defaultConfig()
			tc.want(&want)
			want = want.withDefaults(noEnv)
			if diff := cmp.Diff(want, c, cmpopts.IgnoreUnexported(Config{})); diff != "" {
				t.Errorf("loadConfig() (-want +got):\n%s", diff)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
}

func noEnv(string) string { return "" }

// flag > IMDSD_* > file > default, per setting; lists replace, never merge.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte("source: dev\nregion: eu-west-1\nrole_name: from-file\nlisten: [127.0.0.1:1111]\ndev_lifetime: 2h\nlog_level: warn\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"IMDSD_CONFIG":       file,
		"IMDSD_REGION":       "eu-west-2",
		"IMDSD_ROLE_NAME":    "from-env",
		"IMDSD_LISTEN":       "127.0.0.1:2222, [::1]:2222",
		"IMDSD_DEV_LIFETIME": "3h",
	}
	c, path, err := loadConfigArgs([]string{"--region", "eu-west-3", "--listen", "127.0.0.1:3333"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{"path": path, "region": c.Region, "role_name": c.RoleName, "listen": c.Listen, "dev_lifetime": c.DevLifetime, "log_level": c.LogLevel, "token_mode": c.TokenMode}
	want := map[string]any{
		"path":         file,
		"region":       "eu-west-3",                // flag beats env and file
		"role_name":    "from-env",                 // env beats file
		"listen":       []string{"127.0.0.1:3333"}, // flag list replaces env list
		"dev_lifetime": 3 * time.Hour,              // env beats file
		"log_level":    "warn",                     // file beats default
		"token_mode":   "required",                 // default
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layers (-want +got):\n%s", diff)
	}
}

func TestConfigLoadErrors(t *testing.T) {
	dir := t.TempDir()
	large := filepath.Join(dir, "large.yaml")
	if err := os.WriteFile(large, bytes.Repeat([]byte("#"), 1<<20+1), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"explicit file missing", []string{"--config", filepath.Join(dir, "nope.yaml")}, nil,
			"config: cannot read " + filepath.Join(dir, "nope.yaml") + ": stat " + filepath.Join(dir, "nope.yaml") + ": no such file or directory"},
		{"env file missing", nil, map[string]string{"IMDSD_CONFIG": filepath.Join(dir, "x.yaml")},
			"config: cannot read " + filepath.Join(dir, "x.yaml") + ": stat " + filepath.Join(dir, "x.yaml") + ": no such file or directory"},
		{"directory", []string{"--config", dir}, nil,
			"config: cannot read " + dir + ": it is a directory; give the path of a YAML file (--config or IMDSD_CONFIG)"},
		{"too large", []string{"--config", large}, nil,
			"config: cannot read " + large + ": it is 1048577 bytes, and a config file is at most 1 MiB"},
		{"bad env values", nil, map[string]string{"IMDSD_DURATION": "soon", "IMDSD_ALLOW_SHORT_DURATION": "maybe", "IMDSD_MAX_CONNECTIONS": "many"},
			"IMDSD_DURATION: must be a duration such as 1h or 90m (got \"soon\")\nIMDSD_ALLOW_SHORT_DURATION: must be true or false (got \"maybe\")\n" +
				"IMDSD_MAX_CONNECTIONS: must be a whole number such as 1024 (got \"many\")"},
		// It used to mean the default address, silently.
		{"env empty listen", nil, map[string]string{"IMDSD_LISTEN": ","},
			"IMDSD_LISTEN: must name at least one address such as 127.0.0.1:8169; unset it to use the default (got \",\")"},
		{"negative durations", []string{"--duration", "-1h", "--dev-lifetime", "0s"}, map[string]string{"IMDSD_DURATION": "-90m"},
			"IMDSD_DURATION: must be a positive duration such as 1h or 90m (got \"-90m\")\n" +
				"--dev-lifetime: must be a positive duration such as 1h or 90m (got 0s)\n" +
				"--duration: must be a positive duration such as 1h or 90m (got -1h0m0s)"},
		{"huge env value", nil, map[string]string{"IMDSD_ALLOW_SHORT_DURATION": strings.Repeat("y", 1<<20)},
			"IMDSD_ALLOW_SHORT_DURATION: must be true or false (got \"" + strings.Repeat("y", 64) + "…\")"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := loadConfigArgs(tc.args, func(k string) string { return tc.env[k] })
			if err == nil || err.Error() != tc.want {
				t.Errorf("loadConfig() = %v, want %q", err, tc.want)
			}
		})
	}
	if _, _, err := loadConfigArgs([]string{"--help"}, noEnv); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v, want flag.ErrHelp", err)
	}
}

// Every flag has a config key and an environment variable, and the keys are
// unique.
func TestSettingsTable(t *testing.T) {
	keys, flags := map[string]bool{}, map[string]bool{}
	secrets := 0
	for _, s := range settings {
		if s.flag == "" {
			secrets++
			keys[s.key] = true
			continue
		}
		if keys[s.key] || flags[s.flag] {
			t.Errorf("setting %s/%s listed twice", s.key, s.flag)
		}
		keys[s.key], flags[s.flag] = true, true
		if s.key != strings.ReplaceAll(s.flag, "-", "_") && !strings.HasPrefix(s.key, strings.ReplaceAll(s.flag, "-", "_")) {
			t.Errorf("key %q does not follow flag %q", s.key, s.flag)
		}
	}
	for _, secret := range []string{"secret-access-key", "session-token", "access-key-id"} {
		if flags[secret] {
			t.Errorf("--%s is a flag: secrets must never be (process arguments are public)", secret)
		}
	}
	var rf runFlags
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	rf.register(fs)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		if f.Name != configFlag && !flags[f.Name] {
			t.Errorf("flag --%s has no config key", f.Name)
		}
	})
	if n != len(settings)-secrets+1 {
		t.Errorf("%d flags for %d settings", n, len(settings))
	}
}

// FuzzParseConfig: any file is either applied or refused with messages
// that name the file; it never panics.
func FuzzParseConfig(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.yaml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("listen: [a, [b]]\ntags: {a: {b: c}}\n"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := defaultConfig()
		err := parseConfigFile(&c, bytes.NewReader(b), "fuzz.yaml")
		if err == nil {
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, "fuzz.yaml") {
				t.Errorf("message %q does not name the file", line)
			}
		}
	})
}
