//go:build !windows

package audit

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// checkDir refuses a directory that another user could write in, and a
// directory above it that another user could rename (world-writable
// without the sticky bit).
func checkDir(dir string, fi fs.FileInfo) error {
	if fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("directory %s is writable by every user: another user could replace the file", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("directory %s belongs to uid %d, neither root nor imdsd's user", dir, st.Uid)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	for a := filepath.Dir(real); ; a = filepath.Dir(a) {
		afi, err := os.Stat(a)
		if err != nil {
			return err
		}
		if afi.Mode().Perm()&0o002 != 0 && afi.Mode()&fs.ModeSticky == 0 {
			return fmt.Errorf("directory %s is writable by every user without the sticky bit: another user could replace %s", a, dir)
		}
		if a == filepath.Dir(a) {
			return nil
		}
	}
}

func links(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

// openFile opens path for appending, mode 0600, without following a
// symlink, and checks what it opened.
func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		if pe, ok := err.(*fs.PathError); ok && pe.Err == syscall.ELOOP {
			return nil, &PathError{Path: path, Rule: "is a symbolic link; name the file itself"}
		}
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkFile(path, fi)
	}
	if err == nil && fi.Mode().Perm() != 0o600 {
		err = f.Chmod(0o600) // a file made by hand or by logrotate's create
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
