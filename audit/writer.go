package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// DefaultQueue is the default bound of a Writer's queue: about 2 MiB of
// records, several seconds of the load script's rate, enough to ride out
// a disk that stalls for a moment.
const DefaultQueue = 8192

// Options configure Open.
type Options struct {
	// Path is the audit_log file: appended to, created with mode 0600,
	// checked by ValidatePath.
	Path string
	// Out, when not nil, is written instead of a file (standard output in
	// the foreground, tests). Reopen does nothing then. With neither Path
	// nor Out, records only go to Log (Echo).
	Out io.Writer
	// Queue bounds the records waiting to be written; DefaultQueue when
	// 0 or less.
	Queue int
	// Log is the service log: write errors and dropped records are
	// reported there, at most once a minute each.
	Log zerolog.Logger
	// Echo also writes each record to Log (level info, message "audit").
	Echo bool
}

// Writer writes Records as JSON lines, one goroutine behind a bounded
// queue: Write never blocks and never touches the disk. When the queue is
// full the record is dropped, counted (Stats) and reported in the log at
// most once a minute, never silently. Lines reach the file (the OS's
// cache, not the disk: no fsync) as soon as the queue runs empty, in
// batches of up to 64 KiB while it does not.
//
// A Writer is safe for concurrent use. Close stops its goroutine; a
// record written after Close returned is dropped and counted (one written
// while Close runs is either written or lost).
type Writer struct {
	path      string
	q         chan Record
	ctl       chan chan error
	syncReq   chan chan struct{}
	quit      chan struct{}
	done      chan struct{}
	log       zerolog.Logger
	echo      bool
	closeOnce sync.Once

	written, dropped, failed atomic.Uint64
	closed                   atomic.Bool
	lastDropLog              atomic.Int64 // unix nanoseconds

	// Owned by the goroutine.
	f        *os.File // nil when writing to Out or nowhere
	out      io.Writer
	batch    []byte
	batchN   uint64
	lastFail time.Time
	closeErr error
}

// Path is the file the Writer writes to ("" when it writes to Out).
func (w *Writer) Path() string { return w.path }

// Echo reports whether the Writer also writes each record to the log.
func (w *Writer) Echo() bool { return w.echo }

// Stats are a Writer's counters since Open, for the metrics.
type Stats struct {
	// Written: lines handed to the file (or Out).
	Written uint64
	// Dropped: records not queued because the queue was full or the
	// Writer closed.
	Dropped uint64
	// Failed: records lost because writing them failed (disk full, I/O
	// error).
	Failed uint64
}

// maxBatch is the most bytes gathered before a write.
const maxBatch = 64 << 10

// Open validates and opens the audit log and starts the Writer's
// goroutine; Close stops it.
func Open(o Options) (*Writer, error) {
	w := &Writer{
		path:    o.Path,
		ctl:     make(chan chan error),
		syncReq: make(chan chan struct{}),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		log:     o.Log,
		echo:    o.Echo,
		out:     o.Out,
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	w.q = make(chan Record, o.Queue)
	if o.Out != nil {
		w.path = ""
	} else if o.Path != "" {
		if err := ValidatePath(o.Path); err != nil {
			return nil, err
		}
		f, err := openFile(o.Path)
		if err != nil {
			return nil, err
		}
		w.f, w.out = f, f
	}
	w.batch = make([]byte, 0, maxBatch+4096)
	go w.run()
	return w, nil
}

// Write queues r and returns at once: true when queued, false when
// dropped (queue full, or the Writer closed). A zero r.Time is set to now.
// It allocates nothing.
func (w *Writer) Write(r Record) bool {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	if !w.closed.Load() {
		select {
		case w.q <- r:
			return true
		default:
		}
	}
	n := w.dropped.Add(1)
	now := time.Now().UnixNano()
	if last := w.lastDropLog.Load(); now-last >= int64(time.Minute) && w.lastDropLog.CompareAndSwap(last, now) {
		w.log.Warn().Uint64("dropped_total", n).Int("queue", cap(w.q)).Bool("closed", w.closed.Load()).
			Msg("audit record dropped: the queue is full (the audit log's disk is too slow) or the writer closed")
	}
	return false
}

// Stats returns the counters. Safe to call at any time.
func (w *Writer) Stats() Stats {
	return Stats{Written: w.written.Load(), Dropped: w.dropped.Load(), Failed: w.failed.Load()}
}

// Reopen writes what is queued and opens the file again by its path, for
// logrotate's rename-and-SIGHUP: the following lines go to a new file at
// Path. If the path cannot be opened (or fails ValidatePath), the Writer
// keeps writing to the file it has and Reopen returns the error. It blocks
// until done; it does nothing for Out.
func (w *Writer) Reopen() error {
	if w.path == "" {
		return nil
	}
	reply := make(chan error, 1)
	select {
	case w.ctl <- reply:
		return <-reply
	case <-w.done:
		return errors.New("reopen audit log: the writer is closed")
	}
}

// Sync returns once every record written before it is in the file (the
// OS's cache: no fsync), for tests and tools that read the trail back.
func (w *Writer) Sync() error {
	reply := make(chan struct{})
	select {
	case w.syncReq <- reply:
		<-reply
		return nil
	case <-w.done:
		return errors.New("sync audit log: the writer is closed")
	}
}

// Close writes every queued record, closes the file and waits for the
// goroutine. Later calls return the first's result.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		w.closed.Store(true)
		close(w.quit)
	})
	<-w.done
	return w.closeErr
}

func (w *Writer) run() {
	defer close(w.done)
	for {
		select {
		case r := <-w.q:
			w.add(&r)
			if len(w.q) == 0 || len(w.batch) >= maxBatch {
				w.flush()
			}
		case reply := <-w.ctl:
			w.drain()
			reply <- w.reopen()
		case reply := <-w.syncReq:
			w.drain()
			close(reply)
		case <-w.quit:
			w.drain()
			if w.f != nil {
				if err := w.f.Sync(); err != nil {
					w.closeErr = fmt.Errorf("sync audit log: %w", err)
				}
				if err := w.f.Close(); err != nil && w.closeErr == nil {
					w.closeErr = fmt.Errorf("close audit log: %w", err)
				}
			}
			return
		}
	}
}

// drain writes every queued record.
func (w *Writer) drain() {
	for {
		select {
		case r := <-w.q:
			w.add(&r)
			if len(w.batch) >= maxBatch {
				w.flush()
			}
		default:
			w.flush()
			return
		}
	}
}

// add encodes r into the batch, and to the service log when echoing.
func (w *Writer) add(r *Record) {
	if w.out != nil {
		w.batch = appendRecord(w.batch, r)
		w.batchN++
	} else if !w.echo {
		w.written.Add(1) // nowhere to write: counted as handled
	}
	if w.echo {
		e := w.log.Info().Time("audit_time", r.Time).Str("listener", r.Listener).Str("role", r.Role).
			Str("decision", string(r.Decision)).Str("reason", r.Reason).Int("status", r.Status).
			Str("peer", r.Peer.String()).Int("uid", r.UID).Str("user", r.User)
		if r.PID > 0 {
			e = e.Int("pid", r.PID).Str("exe", r.Exe)
		}
		if !r.Token.IsZero() {
			e = e.Str("container_token_id", r.Token.String())
		}
		if !r.Key.IsZero() {
			e = e.Str("access_key_id_last4", r.Key.String())
		}
		e.Msg("audit")
		if w.out == nil {
			w.written.Add(1)
		}
	}
}

// flush writes the batch; on failure its records are counted as failed
// and the failure logged (at most once a minute).
func (w *Writer) flush() {
	if len(w.batch) == 0 {
		return
	}
	_, err := w.out.Write(w.batch)
	if err != nil {
		w.failed.Add(w.batchN)
		if now := time.Now(); now.Sub(w.lastFail) >= time.Minute {
			w.lastFail = now
			w.log.Error().Err(err).Str("path", w.path).Uint64("failed_total", w.failed.Load()).
				Msg("audit log write failed: records lost")
		}
	} else {
		w.written.Add(w.batchN)
	}
	w.batch, w.batchN = w.batch[:0], 0
}

// reopen opens the path again and swaps the file in.
func (w *Writer) reopen() error {
	if err := ValidatePath(w.path); err != nil {
		return fmt.Errorf("reopen audit log: %w", err)
	}
	f, err := openFile(w.path)
	if err != nil {
		return fmt.Errorf("reopen audit log: %w", err)
	}
	old := w.f
	w.f, w.out = f, f
	if old != nil {
		if err := old.Close(); err != nil {
			w.log.Warn().Err(err).Str("path", w.path).Msg("close the rotated audit log")
		}
	}
	return nil
}
