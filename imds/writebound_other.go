//go:build !linux

package imds

import (
	"net"
	"time"
)

// kernelWriteBound: elsewhere, net/http's WriteTimeout bounds writes.
const kernelWriteBound = false

var writeBound = WriteTimeout

func boundWrites(net.Conn, time.Duration) error { return nil }
