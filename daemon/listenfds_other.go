//go:build !unix

package daemon

import "net"

// inheritedListeners returns nil: socket activation is systemd's, and
// Windows services bind their own sockets.
func inheritedListeners(func(string) string) (map[string]net.Listener, error) {
	return nil, nil
}
