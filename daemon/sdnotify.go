package daemon

import (
	"net"
	"os"
)

// sdNotify tells systemd about the service's state (sd_notify(3)): READY=1
// once the first credentials are held (the unit is Type=notify),
// RELOADING=1 and STOPPING=1. It does nothing outside systemd. The protocol
// is one datagram on the socket NOTIFY_SOCKET names, too small to warrant a
// library.
func sdNotify(state string) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return
	}
	if path[0] == '@' {
		path = "\x00" + path[1:] // abstract socket
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = conn.Write([]byte(state))
}
