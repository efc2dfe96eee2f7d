package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/imdsd/imdsd/imds"
)

// Container tokens: each role exposed to containers has a random 256-bit
// token that containers present in the Authorization header (SPEC.md
// R9.4). It lives in DIR/ROLE/token, so that a container mounts the
// directory DIR/ROLE, not the file: a rotation replaces the file by a
// rename, which a bind mount of the directory sees and a bind mount of the
// file (pinned to the old inode) would not. The file holds the token and
// nothing else: no trailing newline, which the SDKs refuse.
//
// The directories are 0750 and the files 0640, both of the token group
// (container_token_group) when one is configured, else of imdsd's own
// group; so only root, imdsd's user and that group can read a token. A
// token survives restarts (it is read back when valid), so running
// containers keep working; `imdsd container-token rotate ROLE` replaces it.

// containerTokenFile is the name of the token file in a role's directory.
const containerTokenFile = "token"

// tokenStore reads, creates and rotates the token files under dir.
type tokenStore struct {
	dir string
	gid int // -1: leave the group as created
}

// roleDir is the directory a container mounts for role.
func (s tokenStore) roleDir(role string) string { return filepath.Join(s.dir, role) }

// path is role's token file.
func (s tokenStore) path(role string) string {
	return filepath.Join(s.roleDir(role), containerTokenFile)
}

// load returns role's token, creating the file with a new token when it is
// missing. A file that exists but holds no valid token is an error naming
// it: imdsd never silently replaces what containers may be reading.
func (s tokenStore) load(role string) (string, error) {
	b, err := os.ReadFile(s.path(role))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s.rotate(role)
	case err != nil:
		return "", fmt.Errorf("read the container token of role %s: %w", role, err)
	}
	if err := imds.ValidContainerToken(string(b)); err != nil {
		return "", fmt.Errorf("container token of role %s in %s: %w; delete the file or run imdsd container-token rotate %s", role, s.path(role), err, role)
	}
	if err := s.secure(role); err != nil {
		return "", err
	}
	return string(b), nil
}

// rotate writes a new token for role and returns it.
func (s tokenStore) rotate(role string) (string, error) {
	tok := imds.NewContainerToken()
	if err := s.write(role, tok); err != nil {
		return "", err
	}
	return tok, nil
}

// write replaces role's token file by tok, atomically (a temporary file in
// the same directory, then a rename). tok must be a valid token: a
// trailing newline or any control character is refused, never written.
func (s tokenStore) write(role, tok string) error {
	if err := imds.ValidContainerToken(tok); err != nil {
		return fmt.Errorf("write the container token of role %s: %w", role, err)
	}
	dir := s.roleDir(role)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".token-*")
	if err != nil {
		return fmt.Errorf("write the container token of role %s: %w", role, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if _, err := tmp.WriteString(tok); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := s.secure(role); err != nil {
		return err
	}
	if err := chmodChown(tmp.Name(), 0o640, s.gid); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), s.path(role)); err != nil {
		return fmt.Errorf("write the container token of role %s: %w", role, err)
	}
	return nil
}

// secure sets the modes and group of the token directories.
func (s tokenStore) secure(role string) error {
	for _, d := range []string{s.dir, s.roleDir(role)} {
		if err := chmodChown(d, 0o750, s.gid); err != nil {
			return err
		}
	}
	if _, err := os.Stat(s.path(role)); err == nil {
		return chmodChown(s.path(role), 0o640, s.gid)
	}
	return nil
}

func chmodChown(path string, mode fs.FileMode, gid int) error {
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("secure %s: %w", path, err)
	}
	if gid >= 0 {
		if err := os.Lchown(path, -1, gid); err != nil {
			return fmt.Errorf("give %s to group %d (imdsd must be root or a member of it): %w", path, gid, err)
		}
	}
	return nil
}
