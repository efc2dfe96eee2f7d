package caller_test

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/imdsd/imdsd/caller"
)

// fakeLookup answers every lookup with id (or err), counts calls and
// finds the process once per FindProcess, with pid 77.
type fakeLookup struct {
	id          caller.Identity
	err         error
	lookups     atomic.Int32
	finds       atomic.Int32
	local, peer netip.AddrPort
	mu          sync.Mutex
}

func (f *fakeLookup) Lookup(local, remote netip.AddrPort) (caller.Identity, error) {
	f.lookups.Add(1)
	f.mu.Lock()
	f.local, f.peer = local, remote
	f.mu.Unlock()
	if f.err != nil {
		return caller.Unknown(f.err), f.err
	}
	return f.id, nil
}

func (f *fakeLookup) FindProcess(id caller.Identity) (caller.Identity, error) {
	f.finds.Add(1)
	id.PID, id.Exe = 77, "/usr/bin/aws"
	return id, nil
}

func TestConnContext(t *testing.T) {
	f := &fakeLookup{id: alice}
	a, b := net.Pipe() // not TCP
	defer a.Close()
	defer b.Close()
	ctx := caller.ConnContext(f)(t.Context(), b)
	if id := caller.FromContext(ctx).Identity(); id.Known || !errors.Is(id.Err, caller.ErrNotTCP) {
		t.Errorf("pipe: Identity() = %+v, want unknown with ErrNotTCP", id)
	}
	if f.lookups.Load() != 0 {
		t.Errorf("pipe: %d lookups, want 0", f.lookups.Load())
	}

	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx = caller.ConnContext(f)(t.Context(), s)
	if n := f.lookups.Load(); n != 0 {
		t.Errorf("ConnContext looked up %d times, want 0 until a handler asks", n)
	}
	p := caller.FromContext(ctx)
	if diff := cmp.Diff(alice, p.Identity(), cmpopts.EquateErrors()); diff != "" {
		t.Errorf("Identity() (-want +got):\n%s", diff)
	}
	if f.local != s.LocalAddr().(*net.TCPAddr).AddrPort() || f.peer != c.LocalAddr().(*net.TCPAddr).AddrPort() {
		t.Errorf("Lookup(%v, %v), want the server's local address and the client's", f.local, f.peer)
	}
	// The owner and the process are looked up once, however many
	// requests ask.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if i%2 == 0 && p.Identity().UID != alice.UID {
				t.Errorf("Identity() uid = %d", p.Identity().UID)
			}
			if id := p.WithProcess(); id.PID != 77 {
				t.Errorf("WithProcess() pid = %d, want 77", id.PID)
			}
		})
	}
	wg.Wait()
	if n := f.finds.Load(); n != 1 {
		t.Errorf("FindProcess called %d times, want 1", n)
	}
	if n := f.lookups.Load(); n != 1 {
		t.Errorf("Lookup called %d times, want 1", n)
	}
}

func TestPeerUnknownNotSearched(t *testing.T) {
	f := &fakeLookup{}
	p := caller.NewPeer(caller.Unknown(caller.ErrNoSocket), f)
	if id := p.WithProcess(); id.Known || id.PID != 0 || f.finds.Load() != 0 {
		t.Errorf("WithProcess() of an unknown caller = %+v after %d searches, want no search", id, f.finds.Load())
	}
	if p := caller.FromContext(t.Context()); p != nil {
		t.Errorf("FromContext(empty) = %v, want nil", p)
	}
	p2 := caller.NewPeer(bob, nil)
	if got := caller.FromContext(caller.WithPeer(t.Context(), p2)); got != p2 {
		t.Errorf("FromContext(WithPeer(p)) = %v, want p", got)
	}
	if id := p2.WithProcess(); id.UID != bob.UID {
		t.Errorf("WithProcess() without a finder = %+v", id)
	}
}

func TestLookupFunc(t *testing.T) {
	want := errors.New("boom")
	l := caller.LookupFunc(func(_, _ netip.AddrPort) (caller.Identity, error) { return caller.Unknown(want), want })
	if id, err := l.Lookup(netip.AddrPort{}, netip.AddrPort{}); !errors.Is(err, want) || id.UID != -1 {
		t.Errorf("LookupFunc.Lookup() = %+v, %v", id, err)
	}
}

// BenchmarkConnContext: what the server's accept loop pays per
// connection (the lookup itself waits for the first handler that asks).
func BenchmarkConnContext(b *testing.B) {
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
	cc := caller.ConnContext(&fakeLookup{id: alice})
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		cc(ctx, s)
	}
}
