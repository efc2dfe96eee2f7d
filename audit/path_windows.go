package audit

import (
	"fmt"
	"io/fs"
	"os"
)

// checkDir does nothing on Windows: access is by ACL, which the
// directory's mode bits do not show; the installer's directory is only
// writable by administrators and the service.
func checkDir(string, fs.FileInfo) error { return nil }

func links(fs.FileInfo) uint64 { return 1 }

// openFile opens path for appending and checks what it opened.
func openFile(path string) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil {
		if err := checkFile(path, fi); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return f, nil
}
