// Command gen writes the systemd units of imdsd's Linux packages
// (packaging/nfpm.yaml) into a directory: imdsd.service and imdsd.socket,
// rendered by the code that renders imdsd install's (install.ServiceConfig,
// systemd.Socket), for the packaged paths. The service is the one
// `imdsd install -- --config /etc/imdsd/config.yaml` writes for
// /usr/bin/imdsd: the alias as a privileged ExecStartPre=, --listen
// 169.254.169.254:80, ExecReload= with the config file. Only the leading
// comment says where the file comes from. make package runs it; the golden
// test in this directory shows every change of the packaged units.
//
//	go run ./packaging/gen -out DIR
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/imdsd/imdsd/install"
	"github.com/imdsd/imdsd/systemd"
)

// The packaged paths.
const (
	exe        = "/usr/bin/imdsd"
	configPath = "/etc/imdsd/config.yaml"
)

func main() {
	out := flag.String("out", "", "write imdsd.service and imdsd.socket into `DIR`")
	flag.Parse()
	if err := write(*out); err != nil {
		fmt.Fprintf(os.Stderr, "packaging/gen: %v\n", err)
		os.Exit(1)
	}
}

func write(dir string) error {
	if dir == "" || flag.NArg() > 0 {
		return errors.New("usage: go run ./packaging/gen -out DIR")
	}
	files, err := units()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// units are the packaged unit files by name.
func units() (map[string]string, error) {
	// install.ServiceConfig renders for the OS it runs on.
	if runtime.GOOS != "linux" {
		return nil, fmt.Errorf("render the systemd units on Linux (this is %s)", runtime.GOOS)
	}
	// As imdsd install does: the run flags, then a --listen for each
	// address the default install serves, and ExecReload= with --config.
	var o install.ServiceOptions
	args := []string{"--config", configPath}
	for _, l := range o.Listeners() {
		for _, a := range l.Addrs {
			args = append(args, "--"+l.Flag, a)
		}
	}
	o.ReloadArgs = []string{"--config", configPath}
	service, _ := install.ServiceConfig(exe, args, o).Option["SystemdScript"].(string)
	if service == "" {
		return nil, errors.New("install.ServiceConfig rendered no systemd unit")
	}
	return map[string]string{
		"imdsd.service": header(service, serviceHeader),
		"imdsd.socket":  header(systemd.Socket(systemd.Options{}), socketHeader),
	}, nil
}

const (
	serviceHeader = `# imdsd.service of the imdsd package, rendered from imdsd install's unit
# (packaging/gen): the unit "imdsd install -- --config /etc/imdsd/config.yaml"
# writes. Configure imdsd in /etc/imdsd/config.yaml and /etc/imdsd/environment;
# to change this file, add a drop-in (systemctl edit imdsd). Why each line is
# here: systemd/doc.go.
`
	socketHeader = `# imdsd.socket of the imdsd package (packaging/gen), not enabled by the
# package: "systemctl enable --now imdsd.socket" has systemd bind port 80 and
# hand the listeners to imdsd.service, which then binds nothing itself.
`
)

// header replaces the unit's leading comment, which speaks of imdsd
// install, with h.
func header(unit, h string) string {
	i := strings.Index(unit, "\n[Unit]")
	if !strings.HasPrefix(unit, "#") || i < 0 {
		return h + unit
	}
	return h + unit[i+1:]
}
