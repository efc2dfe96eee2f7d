// Package systemd holds the service unit templates (systemd unit and socket,
// launchd plist), embedded with go:embed for the install package.
//
// It is empty until the service issue lands.
package systemd
