//go:build !windows && !darwin

package daemon

// defaultConfigPath is where the service's config file lives.
func defaultConfigPath() string { return "/etc/imdsd/config.yaml" }
