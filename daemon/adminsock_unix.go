//go:build !windows

package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// The admin socket is a credential channel: imdsd creds --format process
// prints what it answers and imdsd mfa sends MFA codes to it. Whoever can
// create or replace the socket, or the directory holding it, can answer in
// imdsd's place. So the daemon listens only in a directory no other user
// can change (checkSocketDir), and every client checks the same before it
// connects, then the uid of the process it reached (SO_PEERCRED, Linux).

// defaultAdminSocket is where the admin socket lives: systemd's
// RuntimeDirectory when run by the unit, /run/imdsd for root, else the
// user's runtime directory, else a directory of the user's own in the
// temporary directory (which another user may have created first: both
// sides check).
func defaultAdminSocket(getenv func(string) string) string {
	if dir := getenv("RUNTIME_DIRECTORY"); dir != "" {
		return filepath.Join(strings.Split(dir, ":")[0], "admin.sock")
	}
	if os.Geteuid() == 0 {
		if runtime.GOOS == "darwin" {
			return "/var/run/imdsd/admin.sock"
		}
		return "/run/imdsd/admin.sock"
	}
	if dir := getenv("XDG_RUNTIME_DIR"); dir != "" {
		return filepath.Join(dir, "imdsd", "admin.sock")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("imdsd-%d", os.Geteuid()), "admin.sock")
}

// listenAdmin creates the admin socket at path, in a directory it creates
// with mode 0700 when missing. It refuses a directory that is not safe
// (checkSocketDir) and a socket another imdsd serves, which it knows by a
// lock held beside the socket for the daemon's life. It replaces a socket
// left by a crash. The socket is 0600, or 0660 for the directory's group
// when the directory admits that group (systemd's RuntimeDirectoryMode=0750
// of the unit): whoever may enter may ask. Closing the listener removes the
// socket and the lock.
func listenAdmin(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	euid := os.Geteuid()
	di, _, err := checkSocketDir(dir, euid, false)
	if err != nil {
		return nil, fmt.Errorf("%w; %s", err, adminFlagHint)
	}
	sock := filepath.Join(dir, filepath.Base(path))
	lock, err := lockAdmin(sock)
	if err != nil {
		return nil, err
	}
	ln, err := listenLocked(sock, di)
	if err != nil {
		unlockAdmin(lock)
		return nil, err
	}
	return &adminListener{Listener: ln, path: sock, lock: lock}, nil
}

// listenLocked creates the socket once the lock is held.
func listenLocked(sock string, di fs.FileInfo) (net.Listener, error) {
	// An imdsd without the lock (an older version) may still answer.
	if conn, err := net.Dial("unix", sock); err == nil {
		conn.Close()
		return nil, fmt.Errorf("another imdsd is serving its admin API there; stop it, or %s", adminFlagHint)
	}
	if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", sock)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	mode := os.FileMode(0o600)
	if di.Mode().Perm()&0o050 == 0o050 {
		// The group of the directory may enter it: let it connect.
		if err := os.Chown(sock, -1, int(di.Sys().(*syscall.Stat_t).Gid)); err == nil {
			mode = 0o660
		}
	}
	if err := os.Chmod(sock, mode); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// adminListener is the admin socket and the lock that makes it this
// daemon's.
type adminListener struct {
	net.Listener
	path string
	lock *os.File
	once sync.Once
}

// Close closes the socket, removes it, then removes and releases the lock.
func (l *adminListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() {
		_ = os.Remove(l.path) // net unlinks it too; a crash would not
		unlockAdmin(l.lock)
	})
	return err
}

// lockAdmin takes the lock beside the socket sock (sock.lock, holding the
// pid), or says which imdsd holds it.
func lockAdmin(sock string) (*os.File, error) {
	name := sock + ".lock"
	for range 5 {
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			b, _ := io.ReadAll(io.LimitReader(f, 32))
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				who := "another imdsd"
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
					who = fmt.Sprintf("another imdsd (pid %d)", pid)
				}
				return nil, fmt.Errorf("%s is serving its admin API there; stop it, or %s", who, adminFlagHint)
			}
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		// A daemon leaving removes its lock file before it releases it:
		// hold the file that is at the path, not one removed meanwhile.
		fi, err1 := f.Stat()
		pi, err2 := os.Lstat(name)
		if err1 == nil && err2 == nil && os.SameFile(fi, pi) {
			_ = f.Truncate(0)
			_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("lock %s: it keeps being replaced", name)
}

// unlockAdmin removes the lock file, then releases the lock.
func unlockAdmin(f *os.File) {
	_ = os.Remove(f.Name())
	f.Close()
}

// trustedGroup reports whether a directory writable by its group gid may
// lie on the way to the admin socket: root's group, and on macOS daemon,
// the group of /var/run (root:daemon 0775).
func trustedGroup(gid uint32) bool {
	return gid == 0 || runtime.GOOS == "darwin" && gid == 1
}

// checkSocketDir checks that no user but root and euid can create,
// remove or rename an entry in dir, the directory of the admin socket
// (symbolic links resolved), nor replace dir or a directory above it. It
// returns dir's information and its owner.
//
// dir must be owned by root or euid and writable by neither its group nor
// others. A client (client true) also accepts a directory of another user
// that root placed for it, in a directory only root can change: systemd's
// RuntimeDirectory owned by the service user, /run/imdsd of a DynamicUser
// (a member of the socket's group runs imdsd status there). Each directory
// above must be owned by root or euid, and writable by others only when
// sticky (/tmp), by its group only when that is root's.
func checkSocketDir(dir string, euid int, client bool) (fs.FileInfo, uint32, error) {
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, 0, err
	}
	if !fi.IsDir() {
		return nil, 0, fmt.Errorf("%s is not a directory", dir)
	}
	st := fi.Sys().(*syscall.Stat_t)
	owner := st.Uid
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, 0, fmt.Errorf("directory %s is writable by others (mode %04o): another user could put a socket of theirs in its place", dir, fi.Mode().Perm())
	}
	switch {
	case owner == 0 || owner == uint32(euid):
	case !client:
		return nil, 0, fmt.Errorf("directory %s belongs to uid %d, not to this user (uid %d): another user (or another imdsd) could put a socket of theirs in its place", dir, owner, euid)
	default:
		parent := filepath.Dir(dir)
		pi, err := os.Lstat(parent)
		if err != nil {
			return nil, 0, err
		}
		ps := pi.Sys().(*syscall.Stat_t)
		if ps.Uid != 0 || pi.Mode().Perm()&0o002 != 0 || pi.Mode().Perm()&0o020 != 0 && !trustedGroup(ps.Gid) {
			return nil, 0, fmt.Errorf("directory %s belongs to uid %d, neither root nor this user (uid %d), and root did not place it (%s is not root's alone): that user could answer in imdsd's place", dir, owner, euid, parent)
		}
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		if err := checkAncestor(p, euid); err != nil {
			return nil, 0, err
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	return fi, owner, nil
}

func checkAncestor(p string, euid int) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 0 && st.Uid != uint32(euid) {
		return fmt.Errorf("directory %s on the way to it belongs to uid %d, neither root nor this user (uid %d): that user could replace what it holds", p, st.Uid, euid)
	}
	perm := fi.Mode().Perm()
	if perm&0o022 == 0 || fi.Mode()&fs.ModeSticky != 0 || perm&0o002 == 0 && trustedGroup(st.Gid) {
		return nil
	}
	return fmt.Errorf("directory %s on the way to it is writable by others (mode %04o) and not sticky: another user could replace what it holds", p, perm)
}

// dialAdmin checks that the admin socket at path can be trusted and
// returns a dialer for it, which checks the peer too. Its errors carry the
// exit code of their case: no socket or nothing listening (exit 3), not
// allowed in or not safe to trust (exit 4).
func dialAdmin(path string) (func(context.Context) (net.Conn, error), string, error) {
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		return nil, "", statError(path, err)
	}
	euid := os.Geteuid()
	_, dirOwner, err := checkSocketDir(dir, euid, true)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return nil, "", statError(path, err)
		}
		return nil, "", withCode(exitPermission, fmt.Errorf("trust admin socket %s: %w; not using it", path, err))
	}
	sock := filepath.Join(dir, filepath.Base(path))
	fi, err := os.Lstat(sock)
	if err != nil {
		return nil, "", statError(path, err)
	}
	owner := fi.Sys().(*syscall.Stat_t).Uid
	switch {
	case fi.Mode().Type() != fs.ModeSocket:
		return nil, "", withCode(exitPermission, fmt.Errorf("trust admin socket %s: it is not a socket (%v); not using it", path, fi.Mode().Type()))
	case owner != 0 && owner != uint32(euid) && owner != dirOwner:
		return nil, "", withCode(exitPermission, fmt.Errorf("trust admin socket %s: it belongs to uid %d, neither root, this user (uid %d) nor the owner of its directory (uid %d); not using it", path, owner, euid, dirOwner))
	}
	var d net.Dialer
	return func(ctx context.Context) (net.Conn, error) {
		conn, err := d.DialContext(ctx, "unix", sock)
		if err != nil {
			return nil, dialError(path, err)
		}
		uid, known, err := peerUID(conn)
		if err != nil {
			conn.Close()
			return nil, withCode(exitPermission, fmt.Errorf("trust admin socket %s: read its peer's credentials: %w", path, err))
		}
		if known && uid != 0 && uid != uint32(euid) && uid != owner {
			conn.Close()
			return nil, withCode(exitPermission, fmt.Errorf("trust admin socket %s: the process answering runs as uid %d, neither root, this user (uid %d) nor the socket's owner (uid %d); not using it", path, uid, euid, owner))
		}
		return conn, nil
	}, "http://imdsd", nil
}

// statError is the error for a socket or directory that cannot be looked at.
func statError(path string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return withCode(exitPermission, fmt.Errorf("reach imdsd at %s: permission denied; run as the user imdsd runs as, as a member of its socket's group, or with sudo", path))
	}
	if errors.Is(err, fs.ErrNotExist) {
		return withCode(exitUnreachable, fmt.Errorf("no admin socket at %s: is imdsd running? (imdsd run, or sudo imdsd start)", path))
	}
	return withCode(exitUnreachable, fmt.Errorf("reach imdsd at %s: %w", path, err))
}

// dialError is the error for a connect that failed.
func dialError(path string, err error) error {
	switch {
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		return withCode(exitPermission, fmt.Errorf("reach imdsd at %s: permission denied; run as the user imdsd runs as, as a member of its socket's group, or with sudo", path))
	case errors.Is(err, syscall.ECONNREFUSED):
		return withCode(exitUnreachable, fmt.Errorf("reach imdsd at %s: nothing answers (a socket left by an imdsd that stopped); is imdsd running? (imdsd run, or sudo imdsd start)", path))
	case errors.Is(err, fs.ErrNotExist):
		return withCode(exitUnreachable, fmt.Errorf("no admin socket at %s: is imdsd running? (imdsd run, or sudo imdsd start)", path))
	}
	return withCode(exitUnreachable, fmt.Errorf("reach imdsd at %s: %w", path, err))
}

// adminToken is only used on Windows.
const adminToken = ""
