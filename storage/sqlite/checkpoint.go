package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
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
// appending meanwhile and starts the log over once it is all copied.
//
// Other processes on the same file (the admin commands) keep SQLite's
// automatic checkpoints on their own connections.

// checkpointEvery is how often the log is copied back. At the bench's peak
// (about 10,000 pages a second) the log stays under 10 MB.
const checkpointEvery = 100 * time.Millisecond

// checkpointer runs PASSIVE checkpoints until stopped.
type checkpointer struct {
	db     *sql.DB // one connection, kept open
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func startCheckpointer(path string, every time.Duration) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s for checkpoints: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{db: db, cancel: cancel}
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
			_, _, _ = c.checkpoint(ctx)
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

// stop ends the goroutine, then copies the log back one last time.
func (c *checkpointer) stop() error {
	c.cancel()
	c.done.Wait()
	_, _, err := c.checkpoint(context.Background())
	return errors.Join(err, c.db.Close())
}
