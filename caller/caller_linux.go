package caller

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Supported is what this OS's lookup tells: on Linux, the user, the
// user's groups and the executable.
var Supported = Support{User: true, Groups: true, Exe: true}

// The peer socket is found with one NETLINK_SOCK_DIAG request for its
// exact four-tuple (inet_diag_req_v2 without NLM_F_DUMP). The kernel
// answers it from the TCP hash tables (inet_diag_find_one_icsk), in
// constant time. vishvananda/netlink carries the request (socket, sequence
// and port checks, error and ext-ack decoding), but its own SocketGet sets
// NLM_F_DUMP, which makes the kernel walk every bucket of the TCP hash
// tables and filter by port: 1.6 ms per lookup on a host with 262144
// buckets, against 12 µs for the exact request. Its request type is
// unexported, so the 56-byte body is serialised here (diagRequest).

// Sizes and offsets of linux/inet_diag.h.
const (
	sizeofDiagReq = 56 // struct inet_diag_req_v2
	sizeofDiagMsg = 72 // struct inet_diag_msg
	offUID        = 64 // inet_diag_msg.idiag_uid
	offInode      = 68 // inet_diag_msg.idiag_inode
	tcpListen     = 10 // TCP_LISTEN
)

// diagRequest is an inet_diag_req_v2 for one TCP socket: the one bound to
// src and connected to dst.
type diagRequest struct {
	family   uint8
	src, dst netip.AddrPort
}

func (r *diagRequest) Len() int { return sizeofDiagReq }

func (r *diagRequest) Serialize() []byte {
	b := make([]byte, sizeofDiagReq)
	b[0] = r.family
	b[1] = unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(b[4:], 0xffffffff) // idiag_states: any
	putSockID(b[8:56], r.src, r.dst)
	binary.NativeEndian.PutUint32(b[48:], nl.TCPDIAG_NOCOOKIE)
	binary.NativeEndian.PutUint32(b[52:], nl.TCPDIAG_NOCOOKIE)
	return b
}

// putSockID writes the ports and addresses of an inet_diag_sockid (its
// first 40 bytes) into b: ports in network order, IPv4 addresses in the
// first 4 bytes of their 16.
func putSockID(b []byte, src, dst netip.AddrPort) {
	binary.BigEndian.PutUint16(b[0:], src.Port())
	binary.BigEndian.PutUint16(b[2:], dst.Port())
	if src.Addr().Is4() {
		a, c := src.Addr().As4(), dst.Addr().As4()
		copy(b[4:], a[:])
		copy(b[20:], c[:])
		return
	}
	a, c := src.Addr().As16(), dst.Addr().As16()
	copy(b[4:], a[:])
	copy(b[20:], c[:])
}

// System is the OS's caller lookup: on Linux, inet_diag for the socket's
// owner, the user database (cached) for its name and groups, and /proc for
// its process. It is safe for concurrent use; lookups share one netlink
// socket and are serialised on it (about 12 µs each).
type System struct {
	accounts *accountCache
	procs    *procFinder

	mu      sync.Mutex // guards sock and buf
	sock    *nl.NetlinkSocket
	handles map[int]*nl.SocketHandle
	buf     []byte // answers are read into it
}

// NewSystem returns the lookup of this OS. On Linux it opens a
// NETLINK_SOCK_DIAG socket, released by Close.
func NewSystem(o Options) (*System, error) {
	s := &System{
		accounts: newAccountCache(o.Accounts, o.AccountsTTL, o.Now),
		procs:    newProcFinder("/proc"),
	}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

// open opens the netlink socket; s.mu is held or s is not shared yet.
func (s *System) open() error {
	sock, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return fmt.Errorf("open NETLINK_SOCK_DIAG socket: %w", err)
	}
	// The kernel answers at once; a lost answer must not hang a
	// connection's accept for the library's default of 60 s.
	tv := unix.NsecToTimeval(int64(time.Second))
	_ = sock.SetReceiveTimeout(&tv)
	_ = sock.SetSendTimeout(&tv)
	s.sock = sock
	s.handles = map[int]*nl.SocketHandle{unix.NETLINK_SOCK_DIAG: {Socket: sock}}
	return nil
}

// Close releases the netlink socket. Lookups after Close reopen it.
func (s *System) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sock != nil {
		s.sock.Close()
		s.sock, s.handles = nil, nil
	}
	return nil
}

// Lookup implements [Lookup]: the uid and inode of the socket bound to
// remote and connected to local, and the uid's name and groups.
func (s *System) Lookup(local, remote netip.AddrPort) (Identity, error) {
	uid, inode, err := s.diag(local, remote)
	if err != nil {
		return Unknown(err), err
	}
	id := Identity{Known: true, UID: int(uid), Inode: uint64(inode)}
	s.accounts.fill(&id)
	return id, nil
}

// diag asks the kernel for the peer socket of (local, remote).
func (s *System) diag(local, remote netip.AddrPort) (uid, inode uint32, err error) {
	if !local.IsValid() || !remote.IsValid() {
		return 0, 0, fmt.Errorf("look up peer %v of %v: invalid address", remote, local)
	}
	req := diagRequest{family: unix.AF_INET6, src: remote, dst: local}
	// An IPv4 client of a dual-stack listener appears as ::ffff:a.b.c.d.
	// Asked as AF_INET, the kernel's lookup finds both an AF_INET socket
	// and an AF_INET6 one connected through a mapped address: they share
	// the hash table, keyed by the IPv4 addresses.
	ra, la := remote.Addr().Unmap(), local.Addr().Unmap()
	if ra.Is4() && la.Is4() {
		req = diagRequest{
			family: unix.AF_INET,
			src:    netip.AddrPortFrom(ra, remote.Port()),
			dst:    netip.AddrPortFrom(la, local.Port()),
		}
	} else {
		req.src = netip.AddrPortFrom(remote.Addr().WithZone(""), remote.Port())
		req.dst = netip.AddrPortFrom(local.Addr().WithZone(""), local.Port())
	}
	msg, err := s.execute(&req)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return 0, 0, fmt.Errorf("look up peer %v of %v: %w", remote, local, ErrNoSocket)
		}
		return 0, 0, fmt.Errorf("look up peer %v of %v: sock_diag: %w", remote, local, err)
	}
	return parseDiagMsg(msg, &req)
}

// execute sends req and returns the one answer.
//
// The request, built by the library, is sent and its answer read straight
// on the library's socket, into the System's buffer: the kernel queues a sock_diag
// answer before sendmsg returns, so it is there at once, while the
// library's Receive zeroes a 64 KiB array and sets a deadline on every
// call, which was half of a lookup's cost (BENCHMARKS.md, "Caller lookup").
// Only if the answer is not there yet does Receive wait for it.
func (s *System) execute(req *diagRequest) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sock == nil {
		if err := s.open(); err != nil {
			return nil, err
		}
	}
	r := nl.NewNetlinkRequest(nl.SOCK_DIAG_BY_FAMILY, 0)
	r.AddData(req)
	msg, err := s.sendReceive(r)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		// A timeout or a broken socket: start afresh next time rather
		// than read a stale answer.
		s.sock.Close()
		s.sock, s.handles = nil, nil
	}
	return msg, err
}

// sendReceive sends r and returns the payload of its one answer (a copy).
// s.mu is held.
func (s *System) sendReceive(r *nl.NetlinkRequest) ([]byte, error) {
	// Straight to the kernel too: the library's Send sets a write
	// deadline and goes through the poller, for a message the kernel
	// takes at once (it never blocks a netlink request of this size).
	if err := unix.Sendto(s.sock.GetFd(), r.Serialize(), unix.MSG_DONTWAIT, &kernel); err != nil {
		if !errors.Is(err, unix.EAGAIN) {
			return nil, err
		}
		if err := s.sock.Send(r); err != nil {
			return nil, err
		}
	}
	if s.buf == nil {
		s.buf = make([]byte, 4096) // an answer is one inet_diag_msg, under 100 bytes
	}
	for range 8 { // answers to earlier, timed-out requests are skipped
		n, _, err := unix.Recvfrom(s.sock.GetFd(), s.buf, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) {
			// Not queued yet: the library waits, with the timeout.
			msgs, _, err := s.sock.Receive()
			if err != nil {
				return nil, err
			}
			for _, m := range msgs {
				if m.Header.Seq == r.Seq {
					return answerOf(m.Header.Type, m.Data)
				}
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		for b := s.buf[:n]; len(b) >= unix.SizeofNlMsghdr; {
			l := int(binary.NativeEndian.Uint32(b[0:4]))
			if l < unix.SizeofNlMsghdr || l > len(b) {
				return nil, fmt.Errorf("sock_diag answer: bad length %d", l)
			}
			typ, seq := binary.NativeEndian.Uint16(b[4:6]), binary.NativeEndian.Uint32(b[8:12])
			if seq == r.Seq {
				return answerOf(typ, b[unix.SizeofNlMsghdr:l])
			}
			b = b[(l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1):]
		}
	}
	return nil, errors.New("sock_diag: no answer to the request")
}

// kernel is the address of netlink requests: the kernel (port 0).
var kernel = unix.SockaddrNetlink{Family: unix.AF_NETLINK}

// answerOf is the payload of an answer of type typ, or the error a
// NLMSG_ERROR answer carries.
func answerOf(typ uint16, data []byte) ([]byte, error) {
	if typ == unix.NLMSG_ERROR {
		if len(data) < 4 {
			return nil, errors.New("sock_diag: short error answer")
		}
		if errno := -int32(binary.NativeEndian.Uint32(data[0:4])); errno != 0 {
			return nil, syscall.Errno(errno)
		}
		return nil, errors.New("sock_diag: acknowledged without an answer")
	}
	return append([]byte(nil), data...), nil
}

// parseDiagMsg checks that msg (an inet_diag_msg) is the socket req asked
// for and returns its uid and inode. The kernel's exact lookup falls back
// to a listening socket on the requested local address when no connected
// socket matches, so the four-tuple is compared, and a listener refused:
// after the peer went away, another process may listen on its old port.
func parseDiagMsg(msg []byte, req *diagRequest) (uid, inode uint32, err error) {
	if len(msg) < sizeofDiagMsg {
		return 0, 0, fmt.Errorf("sock_diag answer of %d bytes, want %d", len(msg), sizeofDiagMsg)
	}
	src, dst := req.src, req.dst
	if msg[0] == unix.AF_INET6 && req.family == unix.AF_INET {
		// An AF_INET6 socket connected through a mapped address: the
		// kernel reports its addresses in their IPv6 form.
		src = netip.AddrPortFrom(netip.AddrFrom16(src.Addr().As16()), src.Port())
		dst = netip.AddrPortFrom(netip.AddrFrom16(dst.Addr().As16()), dst.Port())
	} else if msg[0] != req.family {
		return 0, 0, fmt.Errorf("look up peer %v of %v: %w", req.src, req.dst, ErrNoSocket)
	}
	var want [40]byte
	putSockID(want[:], src, dst)
	if msg[1] == tcpListen || string(msg[4:44]) != string(want[:]) {
		return 0, 0, fmt.Errorf("look up peer %v of %v: %w", req.src, req.dst, ErrNoSocket)
	}
	uid = binary.NativeEndian.Uint32(msg[offUID:])
	inode = binary.NativeEndian.Uint32(msg[offInode:])
	if inode == 0 {
		// Orphaned (closed, in FIN_WAIT) or TIME_WAIT: the kernel reports
		// uid 0 for these, which must never read as root.
		return 0, 0, fmt.Errorf("look up peer %v of %v: %w", req.src, req.dst, ErrPeerClosed)
	}
	return uid, inode, nil
}

// FindProcess implements [ProcessFinder]: the process holding the socket
// id.Inode, through /proc (see procFinder).
func (s *System) FindProcess(id Identity) (Identity, error) {
	if !id.Known || id.Inode == 0 {
		return id, nil
	}
	p, err := s.procs.find(id.UID, id.Inode)
	if err != nil {
		id.Err = err
		return id, err
	}
	id.PID, id.Exe, id.Cgroup = p.pid, p.exe, p.cgroup
	return id, nil
}
