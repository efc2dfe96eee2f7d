// Command imdsd serves the EC2 instance metadata service endpoint, with
// rotating credentials from AWS STS, to unmodified AWS SDKs and the AWS CLI.
//
// Everything but the process itself lives in package daemon; this file only
// hands it the arguments, environment and signals, and exits with its code.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/imdsd/imdsd/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := daemon.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
