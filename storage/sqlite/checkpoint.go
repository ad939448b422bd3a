package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Checkpoints off the writer's path. In WAL mode SQLite copies the log back
// into the database file ("checkpoints") every 1,000 pages by default, on
// the connection whose commit crossed the mark, and fsyncs both files: the
// store's only writer connection then stalls for the fsync, and every write
// of the process queues behind it while the cores idle (12 % of the refresh
// throughput on the bench's machine). The writer's automatic checkpoints
// are off; this goroutine checkpoints from a connection of its own instead,
// in PASSIVE mode, which never blocks writers or readers: the writer keeps
// appending meanwhile. Starting the log over needs the writer's help (see
// the log restarts below).
//
// Other processes on the same file (the admin commands) keep SQLite's
// automatic checkpoints on their own connections.

// checkpointEvery is how often the log is copied back.
const checkpointEvery = 100 * time.Millisecond

// The log restarts. SQLite starts the log over at the beginning of a write
// transaction when, at that moment, the log is all copied back and no reader
// uses it. With SQLite's own checkpoints that happens on its own: the one
// writer copies the log back just after its commit, and its next
// transaction restarts it. Copied back from elsewhere, the log is never all
// copied when a writer starts under a steady stream of writes (the writer
// has appended since the last checkpoint): it grew by 75 MB a second,
// without end, under the bench's refresh scenario, and every read searched a
// larger log index. So when a checkpoint finds more than restartFrames pages
// in the log, the batcher, between two transactions, asks for a RESTART
// checkpoint on the writer connection: it copies what is left, waits (up to
// restartWait) for the readers to leave the log, and the next write starts
// it over.
const (
	restartFrames = 4096 // 16 MiB of 4 KiB pages
	restartWait   = 100 * time.Millisecond
)

// checkpointer runs PASSIVE checkpoints until stopped.
type checkpointer struct {
	db     *sql.DB // one connection, kept open
	cancel context.CancelFunc
	done   sync.WaitGroup
	// restartFrames: beyond this many pages in the log, restartWanted is
	// set for the batcher (see the log restarts).
	restartFrames int64
	restartWanted atomic.Bool
}

func startCheckpointer(path string, every time.Duration, restartFrames int64) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s for checkpoints: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{db: db, cancel: cancel, restartFrames: restartFrames}
	c.done.Add(1)
	go c.run(ctx, every)
	return c, nil
}

func (c *checkpointer) run(ctx context.Context, every time.Duration) {
	defer c.done.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// A failed checkpoint loses nothing: the log keeps the pages
			// and the next one copies them.
			if frames, _, err := c.checkpoint(ctx); err == nil && frames > c.restartFrames {
				c.restartWanted.Store(true)
			}
		}
	}
}

// checkpoint copies what it can of the log back into the database and
// reports how many frames the log holds and how many of them are copied.
func (c *checkpointer) checkpoint(ctx context.Context) (walFrames, copied int64, err error) {
	var busy int64
	err = c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &walFrames, &copied)
	return walFrames, copied, err
}

// restartLog runs a RESTART checkpoint on the writer connection w, between
// two of its transactions (see the log restarts). When readers stay in the
// log longer than restartWait, it gives up: the log is not restarted this
// time, nothing is lost, and the next checkpoint asks again.
func restartLog(ctx context.Context, w *pool) error {
	if _, err := w.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, restartWait.Milliseconds())); err != nil {
		return err
	}
	var busy, frames, copied int64
	err := w.QueryRowContext(ctx, `PRAGMA wal_checkpoint(RESTART)`).Scan(&busy, &frames, &copied)
	_, restoreErr := w.ExecContext(ctx, `PRAGMA `+connectionPragmas[0])
	return errors.Join(err, restoreErr)
}

// stop ends the goroutine, then copies the log back one last time.
func (c *checkpointer) stop() error {
	c.cancel()
	c.done.Wait()
	_, _, err := c.checkpoint(context.Background())
	return errors.Join(err, c.db.Close())
}
