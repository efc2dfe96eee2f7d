package caller

import (
	"encoding/binary"
	"net"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCgroup(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"v2", "0::/user.slice/user-1000.slice/session-2.scope\n", "/user.slice/user-1000.slice/session-2.scope"},
		{"hybrid", "12:cpu:/x\n1:name=systemd:/system.slice/docker-ab.scope\n0::/system.slice/docker-ab.scope\n", "/system.slice/docker-ab.scope"},
		{"v1 only", "12:cpu:/x\n1:name=systemd:/system.slice/cron.service\n", "/system.slice/cron.service"},
		{"empty", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseCgroup([]byte(tc.in)); got != tc.want {
				t.Errorf("parseCgroup() = %q, want %q", got, tc.want)
			}
		})
	}
}

// dirent builds one linux_dirent64 record.
func dirent(name string) []byte {
	reclen := (19 + len(name) + 1 + 7) &^ 7
	b := make([]byte, reclen)
	binary.NativeEndian.PutUint16(b[16:], uint16(reclen))
	copy(b[19:], name)
	return b
}

func TestAppendNumbers(t *testing.T) {
	var buf []byte
	for _, n := range []string{".", "..", "1", "self", "4242", "12a", "123456789", "1234567890"} {
		buf = append(buf, dirent(n)...)
	}
	buf = append(buf, 1, 2, 3) // a truncated record is ignored
	got := appendNumbers(nil, buf)
	if diff := cmp.Diff([]int{1, 4242, 123456789}, got); diff != "" {
		t.Errorf("appendNumbers() (-want +got):\n%s", diff)
	}
}

func TestRemember(t *testing.T) {
	f := newProcFinder("/proc")
	for pid := 1; pid <= maxRecent+2; pid++ {
		f.remember(7, pid, pid+100)
	}
	f.remember(7, 5, 3)
	got := f.recent[7]
	if len(got) != maxRecent || got[0] != (recentProc{5, 3}) || got[1].pid != maxRecent+2 {
		t.Errorf("recent = %v, want %d entries, pid 5 (fd 3) first, then %d", got, maxRecent, maxRecent+2)
	}
}

func BenchmarkProcScan(b *testing.B) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	sys, err := NewSystem(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer sys.Close()
	id, err := sys.Lookup(s.LocalAddr().(*net.TCPAddr).AddrPort(), s.RemoteAddr().(*net.TCPAddr).AddrPort())
	if err != nil {
		b.Fatal(err)
	}
	// A process not seen before: the walk of /proc, newest first.
	b.Run("new process", func(b *testing.B) {
		for b.Loop() {
			if p, err := newProcFinder("/proc").find(id.UID, id.Inode); err != nil || p.pid != os.Getpid() {
				b.Fatal(p, err)
			}
		}
	})
	// No process holds the socket: every process is read (the worst case).
	b.Run("none holds it", func(b *testing.B) {
		for b.Loop() {
			if _, err := newProcFinder("/proc").find(id.UID, 1<<32-2); err == nil {
				b.Fatal("found")
			}
		}
	})
}
