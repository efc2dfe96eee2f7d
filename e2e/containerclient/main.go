// Command containerclient is the AWS SDK for Go v2 client of imdsd's
// end-to-end container tests (e2e/containers_test.go, e2e/podman_test.go).
// Built statically (CGO_ENABLED=0), it is the only file of an image FROM
// scratch, and it runs on the host too.
//
// It resolves credentials exactly as an unmodified application does:
// config.LoadDefaultConfig, whose chain uses the container provider
// (credentials/endpointcreds) when AWS_CONTAINER_CREDENTIALS_FULL_URI is
// set, with the token of AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or
// AWS_CONTAINER_AUTHORIZATION_TOKEN. It prints one JSON object (output) on
// stdout, or the error on stderr and exits 1.
//
// With -probe it also sends, itself, GET $AWS_CONTAINER_CREDENTIALS_FULL_URI
// without an Authorization header and with a wrong token, and reports the
// statuses and this host's addresses: what the endpoint sees of a container.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
)

// output is what containerclient prints.
type output struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Source          string
	AccountID       string
	CanExpire       bool
	Expires         time.Time
	// With -probe: the statuses of GET FULL_URI without a token and with
	// a wrong one, and this host's addresses.
	Probe *probe `json:",omitempty"`
}

type probe struct {
	MissingToken, WrongToken int
	Addrs                    []string
}

func main() {
	os.Exit(run())
}

func run() int {
	doProbe := flag.Bool("probe", false, "also GET the endpoint without a token and with a wrong one, and report the statuses")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "containerclient: load default config: %v\n", err)
		return 1
	}
	c, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "containerclient: retrieve credentials: %v\n", err)
		return 1
	}
	out := output{
		AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		Source: c.Source, AccountID: c.AccountID, CanExpire: c.CanExpire, Expires: c.Expires,
	}
	if *doProbe {
		p, err := probeEndpoint(ctx, os.Getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
		if err != nil {
			fmt.Fprintf(os.Stderr, "containerclient: probe: %v\n", err)
			return 1
		}
		out.Probe = p
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "containerclient: %v\n", err)
		return 1
	}
	return 0
}

func probeEndpoint(ctx context.Context, url string) (*probe, error) {
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}
	get := func(token string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		if token != "" {
			req.Header.Set("Authorization", token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	var p probe
	var err error
	if p.MissingToken, err = get(""); err != nil {
		return nil, err
	}
	if p.WrongToken, err = get("containerclient-wrong-token-0123456789abcdefghijklmnopqrstuv"); err != nil {
		return nil, err
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		p.Addrs = append(p.Addrs, a.String())
	}
	return &p, nil
}
