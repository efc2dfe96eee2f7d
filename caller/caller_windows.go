package caller

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Supported is what this OS's lookup tells: on Windows the user (SID and
// account name of the process token) and the executable. Groups are not
// looked up (the token's group SIDs could be; not done yet), so Compile
// refuses allow.groups here.
var Supported = Support{User: true, Exe: true}

// The owning process of a TCP connection comes from the IP helper API
// (GetExtendedTcpTable with TCP_TABLE_OWNER_PID_CONNECTIONS, which
// x/sys/windows does not wrap), its executable from
// QueryFullProcessImageName, and its user from the process token. A
// process of another user can be opened this way only by an administrator
// or a service account (LocalSystem); otherwise the caller stays unknown.
var (
	iphlpapi                = windows.NewLazySystemDLL("iphlpapi.dll")
	procGetExtendedTcpTable = iphlpapi.NewProc("GetExtendedTcpTable")
)

const tcpTableOwnerPIDConnections = 4 // TCP_TABLE_OWNER_PID_CONNECTIONS

// System is the OS's caller lookup: on Windows, the TCP table for the
// owning process, and its token for the user. Safe for concurrent use.
// Each lookup reads the whole table of its address family: its cost grows
// with the host's connections.
type System struct {
	bufs sync.Pool // *[]byte, the last table's size
}

// NewSystem returns the lookup of this OS; it fails when iphlpapi.dll
// lacks GetExtendedTcpTable.
func NewSystem(Options) (*System, error) {
	if err := procGetExtendedTcpTable.Find(); err != nil {
		return nil, fmt.Errorf("load GetExtendedTcpTable: %w", err)
	}
	return &System{}, nil
}

// Close does nothing: the lookup holds no handle.
func (*System) Close() error { return nil }

// Lookup implements [Lookup]: the process owning the connection bound to
// remote and connected to local, its executable and its user.
func (s *System) Lookup(local, remote netip.AddrPort) (Identity, error) {
	pid, err := s.owner(local, remote)
	if err != nil {
		err = fmt.Errorf("look up peer %v of %v: %w", remote, local, err)
		return Unknown(err), err
	}
	id := Identity{UID: -1, PID: int(pid)}
	if err := processInfo(pid, &id); err != nil {
		id.Err = fmt.Errorf("look up peer %v of %v: process %d: %w", remote, local, pid, err)
		return id, id.Err
	}
	id.Known = true
	return id, nil
}

// owner finds the owning pid in the IPv4 table, and for an IPv4(-mapped)
// pair also in the IPv6 table (a dual-stack client socket).
func (s *System) owner(local, remote netip.AddrPort) (uint32, error) {
	la, ra := local.Addr().WithZone(""), remote.Addr().WithZone("")
	if la.Unmap().Is4() && ra.Unmap().Is4() {
		src := netip.AddrPortFrom(ra.Unmap(), remote.Port())
		dst := netip.AddrPortFrom(la.Unmap(), local.Port())
		if pid, ok, err := s.find(windows.AF_INET, src, dst); err != nil || ok {
			return pid, err
		}
		la, ra = netip.AddrFrom16(la.As16()), netip.AddrFrom16(ra.As16())
	}
	pid, ok, err := s.find(windows.AF_INET6, netip.AddrPortFrom(ra, remote.Port()), netip.AddrPortFrom(la, local.Port()))
	if err == nil && !ok {
		err = ErrNoSocket
	}
	return pid, err
}

func (s *System) find(af int, src, dst netip.AddrPort) (uint32, bool, error) {
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 16<<10)
		bp = &b
	}
	defer s.bufs.Put(bp)
	for range 4 { // the table may grow between the size query and the read
		size := uint32(len(*bp))
		r, _, _ := procGetExtendedTcpTable.Call(
			uintptr(unsafe.Pointer(&(*bp)[0])), uintptr(unsafe.Pointer(&size)),
			0, uintptr(af), tcpTableOwnerPIDConnections, 0)
		switch windows.Errno(r) {
		case windows.ERROR_SUCCESS:
			pid, ok := findTCPOwner((*bp)[:size], af == windows.AF_INET6, src, dst)
			return pid, ok, nil
		case windows.ERROR_INSUFFICIENT_BUFFER:
			*bp = make([]byte, size+size/4)
		default:
			return 0, false, fmt.Errorf("GetExtendedTcpTable: %w", windows.Errno(r))
		}
	}
	return 0, false, errors.New("GetExtendedTcpTable: the table keeps growing")
}

// processInfo sets id's Exe, SID and User from process pid.
func processInfo(pid uint32, id *Identity) error {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return fmt.Errorf("open process: %w", err)
	}
	defer windows.CloseHandle(h)
	buf := make([]uint16, windows.MAX_LONG_PATH)
	n := uint32(len(buf))
	if err := windows.QueryFullProcessImageName(h, 0, &buf[0], &n); err == nil {
		id.Exe = windows.UTF16ToString(buf[:n])
	}
	var tok windows.Token
	if err := windows.OpenProcessToken(h, windows.TOKEN_QUERY, &tok); err != nil {
		return fmt.Errorf("open process token: %w", err)
	}
	defer tok.Close()
	tu, err := tok.GetTokenUser()
	if err != nil {
		return fmt.Errorf("read token user: %w", err)
	}
	id.SID = tu.User.Sid.String()
	if account, domain, _, err := tu.User.Sid.LookupAccount(""); err == nil {
		id.User = domain + `\` + account
	}
	return nil
}
