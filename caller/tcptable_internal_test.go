package caller

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// row4 and row6 build rows as GetExtendedTcpTable writes them; the upper
// 16 bits of a port DWORD are undefined, so they are filled with junk.
func row4(state uint32, l, r netip.AddrPort, pid uint32) []byte {
	b := make([]byte, sizeofTCPRow4)
	binary.LittleEndian.PutUint32(b[0:], state)
	a := l.Addr().As4()
	copy(b[4:], a[:])
	binary.BigEndian.PutUint16(b[8:], l.Port())
	b[10], b[11] = 0xde, 0xad
	a = r.Addr().As4()
	copy(b[12:], a[:])
	binary.BigEndian.PutUint16(b[16:], r.Port())
	b[18], b[19] = 0xbe, 0xef
	binary.LittleEndian.PutUint32(b[20:], pid)
	return b
}

func row6(state uint32, l, r netip.AddrPort, pid uint32) []byte {
	b := make([]byte, sizeofTCPRow6)
	a := l.Addr().As16()
	copy(b[0:], a[:])
	binary.BigEndian.PutUint16(b[20:], l.Port())
	b[22] = 0xff
	a = r.Addr().As16()
	copy(b[24:], a[:])
	binary.BigEndian.PutUint16(b[44:], r.Port())
	binary.LittleEndian.PutUint32(b[48:], state)
	binary.LittleEndian.PutUint32(b[52:], pid)
	return b
}

func table(rows ...[]byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(rows)))
	for _, r := range rows {
		b = append(b, r...)
	}
	return b
}

func TestFindTCPOwner(t *testing.T) {
	ap := netip.MustParseAddrPort
	server, client := ap("127.0.0.1:80"), ap("127.0.0.1:50123")
	server6, client6 := ap("[::1]:80"), ap("[::1]:50123")
	const established = 5
	t4 := table(
		row4(mibTCPListen, ap("127.0.0.1:50123"), ap("0.0.0.0:0"), 666), // a listener never matches
		row4(established, server, client, 100),                          // the server's own end
		row4(established, client, server, 200),                          // the peer
	)
	t6 := table(
		row6(established, server6, client6, 100),
		row6(established, client6, server6, 300),
	)
	cases := []struct {
		name     string
		table    []byte
		v6       bool
		src, dst netip.AddrPort
		pid      uint32
		ok       bool
	}{
		{"ipv4 peer", t4, false, client, server, 200, true},
		{"ipv4 other end", t4, false, server, client, 100, true},
		{"ipv4 absent", t4, false, ap("127.0.0.1:50124"), server, 0, false},
		{"ipv6 peer", t6, true, client6, server6, 300, true},
		{"ipv6 absent", t6, true, ap("[::1]:1"), server6, 0, false},
		{"empty", nil, false, client, server, 0, false},
		{"count beyond the data", append(binary.LittleEndian.AppendUint32(nil, 1000), row4(established, client, server, 7)...), false, client, server, 7, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pid, ok := findTCPOwner(tc.table, tc.v6, tc.src, tc.dst)
			if pid != tc.pid || ok != tc.ok {
				t.Errorf("findTCPOwner() = %d, %v; want %d, %v", pid, ok, tc.pid, tc.ok)
			}
		})
	}
}
