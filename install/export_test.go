package install

// ParseEnvFileForTest exposes parseEnvFile to the black-box tests: what the
// service finds in the environment file an install wrote.
var ParseEnvFileForTest = parseEnvFile

// A GoldenInstall is an install whose unit (or plist) a testdata/*.golden
// file records: TestGolden renders it, and the integration test
// TestKardianosRendersGolden installs it with kardianos's own Install.
type GoldenInstall struct {
	Args []string
	ServiceOptions
}

// LinuxGolden are the Linux installs of testdata/linux-*.service.golden, by
// file name.
var LinuxGolden = map[string]GoldenInstall{
	"linux-imdsd.service.golden":             {unixArgs, ServiceOptions{}},
	"linux-ipv6-socket-imdsd.service.golden": {unixArgs, ServiceOptions{IPv6: true, SocketActivation: true}},
	// --containers: the container listener, the token group the
	// configuration names, and systemctl reload at the config file.
	"linux-containers-imdsd.service.golden": {append(unixArgs[:len(unixArgs):len(unixArgs)], "--container-listen", "169.254.170.23:80"),
		ServiceOptions{Containers: true, Groups: []string{"imdsd-tokens"}, ReloadArgs: unixArgs}},
	"linux-ipv6-socket-containers-imdsd.service.golden": {append(unixArgs[:len(unixArgs):len(unixArgs)], "--container-listen", "169.254.170.23:80", "--container-listen", "[fd00:ec2::23]:80"),
		ServiceOptions{IPv6: true, SocketActivation: true, Containers: true, ReloadArgs: unixArgs}},
}

// The executable and run flags of the golden installs.
var (
	unixExe  = "/usr/local/bin/imdsd"
	unixArgs = []string{"--config", "/etc/imdsd/config.yaml"}
)
