package caller

import (
	"encoding/binary"
	"net/netip"
)

// The IP helper API's TCP tables with owning processes
// (GetExtendedTcpTable, TCP_TABLE_OWNER_PID_CONNECTIONS), parsed here
// without build tags so that the parser is tested on every OS. Layouts of
// iprtrmib.h / tcpmib.h: a DWORD count, then the rows; integers are
// little-endian (every Windows architecture is), addresses and ports in
// network order, a port in the low 16 bits of its DWORD (the upper bits
// are undefined).
const (
	sizeofTCPRow4 = 24 // MIB_TCPROW_OWNER_PID
	sizeofTCPRow6 = 56 // MIB_TCP6ROW_OWNER_PID
	mibTCPListen  = 2  // MIB_TCP_STATE_LISTEN
)

// findTCPOwner returns the owning pid of the row, in table (an IPv6 table
// when v6), of the connection bound to src and connected to dst.
func findTCPOwner(table []byte, v6 bool, src, dst netip.AddrPort) (uint32, bool) {
	if len(table) < 4 {
		return 0, false
	}
	n := int(binary.LittleEndian.Uint32(table))
	rows := table[4:]
	size := sizeofTCPRow4
	if v6 {
		size = sizeofTCPRow6
	}
	if n > len(rows)/size {
		n = len(rows) / size
	}
	for i := range n {
		r := rows[i*size : (i+1)*size]
		var la, ra netip.Addr
		var lp, rp uint16
		var state, pid uint32
		if v6 {
			la = netip.AddrFrom16([16]byte(r[0:16]))
			lp = binary.BigEndian.Uint16(r[20:])
			ra = netip.AddrFrom16([16]byte(r[24:40]))
			rp = binary.BigEndian.Uint16(r[44:])
			state = binary.LittleEndian.Uint32(r[48:])
			pid = binary.LittleEndian.Uint32(r[52:])
		} else {
			state = binary.LittleEndian.Uint32(r[0:])
			la = netip.AddrFrom4([4]byte(r[4:8]))
			lp = binary.BigEndian.Uint16(r[8:])
			ra = netip.AddrFrom4([4]byte(r[12:16]))
			rp = binary.BigEndian.Uint16(r[16:])
			pid = binary.LittleEndian.Uint32(r[20:])
		}
		if state != mibTCPListen && lp == src.Port() && rp == dst.Port() && la == src.Addr() && ra == dst.Addr() {
			return pid, true
		}
	}
	return 0, false
}
