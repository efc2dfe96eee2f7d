// Command fakests serves rotator/ststest on loopback for the VM test
// (e2e/vm/run.sh): it prints its URL, then serves until interrupted.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/imdsd/imdsd/rotator/ststest"
)

func main() {
	srv := ststest.NewServer(ststest.WithBaseCredentials(
		"AKIAVMTESTBASE000001", "vm/test/base/secret/000000000000000000000", "arn:aws:iam::123456789012:user/vm"))
	fmt.Println(srv.URL)
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	<-c
	srv.Close()
	for _, r := range srv.Requests() {
		fmt.Println("sts request:", r.Action, r.Status)
	}
}
