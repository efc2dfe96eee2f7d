package daemon

// defaultConfigPath is where the service's config file lives.
func defaultConfigPath() string { return "/usr/local/etc/imdsd/config.yaml" }
