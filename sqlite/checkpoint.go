package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
)

// checkpointEvery is how many writes pass between checkpoints: a few
// thousand WAL frames, enough that a page written many times (a busy limit
// bucket, the end of an index) is copied into the database once for many
// commits, few enough that the WAL stays small.
const checkpointEvery = 1024

// checkpointer copies committed pages from the WAL into the database file
// on a connection of its own. SQLite would otherwise do it inside whichever
// commit crosses the threshold, and every caller queued behind that commit
// would wait for thousands of page writes and an extra fsync.
type checkpointer struct {
	db   *sql.DB
	conn *sql.Conn

	kick   chan struct{} // a checkpoint is due; holds one at most
	quit   chan struct{}
	exited chan struct{}

	runs, failures atomic.Int64
}

func newCheckpointer(db *sql.DB, conn *sql.Conn) *checkpointer {
	c := &checkpointer{
		db:     db,
		conn:   conn,
		kick:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go c.run()
	return c
}

// due asks for a checkpoint without waiting: one already asked for covers
// this one too.
func (c *checkpointer) due() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.exited)
	for {
		select {
		case <-c.kick:
		case <-c.quit:
			return
		}
		// PASSIVE never waits for the writer or readers: it copies what
		// no reader still needs, and the writer restarts the WAL once all
		// of it is copied. A failure loses nothing (the frames stay in
		// the WAL) and the next checkpoint tries again.
		var busy, frames, copied int
		if err := c.conn.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").
			Scan(&busy, &frames, &copied); err != nil {
			c.failures.Add(1)
		}
		c.runs.Add(1)
	}
}

// close stops the checkpointer and closes its connection.
func (c *checkpointer) close() error {
	close(c.quit)
	<-c.exited
	return errors.Join(c.conn.Close(), c.db.Close())
}
