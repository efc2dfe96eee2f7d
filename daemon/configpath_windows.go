package daemon

import (
	"os"
	"path/filepath"
)

// defaultConfigPath is where the service's config file lives.
func defaultConfigPath() string {
	base := os.Getenv("ProgramData")
	if base == "" {
		base = `C:\ProgramData`
	}
	return filepath.Join(base, "imdsd", "config.yaml")
}
