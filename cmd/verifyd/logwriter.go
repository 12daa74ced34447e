package main

import (
	"io"
	"sync"
)

// maxPending is how much log text may wait for the writing goroutine before
// a Write waits for it: a stderr that cannot keep up (a full pipe) slows the
// server down rather than filling its memory.
const maxPending = 1 << 20

// lineWriter writes the server's log lines to w from one goroutine, all the
// lines that piled up since its last write in one go. A log line per
// request made a write(2) per request, each under the log handler's lock;
// now a request copies its line into a buffer. When lines are few, each is
// written as soon as the goroutine runs, so the log stays as current as
// before; only lines not yet written are lost if the process is killed.
type lineWriter struct {
	w io.Writer

	mu      sync.Mutex
	pending []byte
	closed  bool

	writeMu sync.Mutex // held while writing to w, so lines stay in order
	spare   []byte     // the buffer last written, reused by writeOut

	wake chan struct{}
	done chan struct{}
}

func newLineWriter(w io.Writer) *lineWriter {
	lw := &lineWriter{w: w, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go lw.run()
	return lw
}

func (lw *lineWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	if lw.closed {
		lw.mu.Unlock()
		lw.writeMu.Lock()
		defer lw.writeMu.Unlock()
		return lw.w.Write(p)
	}
	lw.pending = append(lw.pending, p...)
	full := len(lw.pending) >= maxPending
	if !full {
		// Under mu, so that no wake is sent once Close has closed wake.
		select {
		case lw.wake <- struct{}{}:
		default:
		}
	}
	lw.mu.Unlock()
	if full {
		lw.writeOut()
	}
	return len(p), nil
}

func (lw *lineWriter) run() {
	defer close(lw.done)
	for range lw.wake {
		lw.writeOut()
	}
}

// writeOut writes what is pending.
func (lw *lineWriter) writeOut() {
	lw.writeMu.Lock()
	defer lw.writeMu.Unlock()
	lw.mu.Lock()
	out := lw.pending
	lw.pending = lw.spare[:0]
	lw.mu.Unlock()
	if len(out) > 0 {
		// A log that cannot be written has nowhere to report it.
		_, _ = lw.w.Write(out)
	}
	lw.spare = out
}

// Close writes what is pending; later lines are written as they come.
func (lw *lineWriter) Close() {
	lw.mu.Lock()
	if lw.closed {
		lw.mu.Unlock()
		return
	}
	lw.closed = true
	close(lw.wake)
	lw.mu.Unlock()
	<-lw.done
	lw.writeOut()
}
