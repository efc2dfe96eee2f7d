package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// PathError is an audit_log path that imdsd refuses.
type PathError struct {
	Path string
	Rule string
}

func (e *PathError) Error() string {
	return "audit_log: " + e.Rule + " (got " + strconv.Quote(e.Path) + ")"
}

// ValidatePath checks an audit_log path before it is opened: absolute, in
// a directory that exists, and not where another user could swap the file
// (a symlink to a file of imdsd's choosing, or a hard link). On Unix the
// directory must be neither writable by every user nor owned by a user
// other than root and imdsd's own, and no directory above it may be
// writable by every user without the sticky bit. An existing file must be
// a regular file with no other hard link and not a symlink.
//
// Open checks again, and opens without following a symlink, so a file
// swapped after this check is refused rather than written.
func ValidatePath(path string) error {
	bad := func(rule string, a ...any) error {
		return &PathError{Path: path, Rule: fmt.Sprintf(rule, a...)}
	}
	if !filepath.IsAbs(path) {
		return bad("must be an absolute path")
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return bad("directory %s does not exist", dir)
	case err != nil:
		return bad("directory %s: %v", dir, err)
	case !fi.IsDir():
		return bad("%s is not a directory", dir)
	}
	if err := checkDir(dir, fi); err != nil {
		return bad("%s", err)
	}
	fi, err = os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return bad("%v", err)
	}
	return checkFile(path, fi)
}

// checkFile checks an existing audit file, from Lstat or an open handle.
func checkFile(path string, fi fs.FileInfo) error {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return &PathError{Path: path, Rule: "is a symbolic link; name the file itself"}
	case !fi.Mode().IsRegular():
		return &PathError{Path: path, Rule: "is not a regular file"}
	case links(fi) > 1:
		return &PathError{Path: path, Rule: "has other hard links; remove them or choose another file"}
	}
	return nil
}
