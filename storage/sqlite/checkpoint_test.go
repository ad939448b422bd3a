package sqlite

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// TestCheckpointsOffTheWriter: the writer never checkpoints (its commits do
// not stall on fsync), yet the log is copied back into the database while
// the store is open, and restarts: it stays small under a stream of writes.
func TestCheckpointsOffTheWriter(t *testing.T) {
	s := migrated(t)
	ctx := t.Context()
	var auto int
	if err := s.w.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil {
		t.Fatal(err)
	}
	if auto != 0 {
		t.Fatalf("the writer checkpoints itself every %d pages", auto)
	}
	dbSize := func() int64 {
		fi, err := os.Stat(s.path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := dbSize()
	var walMax int64
	// Ten bursts of writes, each about 4 MB of log; without checkpoints the
	// log would hold them all (about 40 MB).
	for burst := range 10 {
		for i := range 500 {
			if _, err := s.HitCounter(ctx, fmt.Sprintf("burst-%d-%d", burst, i), time.Hour, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if fi, err := os.Stat(s.path + "-wal"); err == nil {
			walMax = max(walMax, fi.Size())
		}
		time.Sleep(3 * checkpointEvery / 2)
	}
	if after := dbSize(); after <= before {
		t.Fatalf("nothing was copied back into the database file (%d bytes before, %d after)", before, after)
	}
	if walMax > 16<<20 {
		t.Fatalf("the log grew to %d bytes: it is not restarted after checkpoints", walMax)
	}
}

// TestLogRestartsUnderSteadyWrites: under a stream of writes with no pause,
// readers reading all along, the log still starts over. Copied back only by
// the checkpointer, it was never all copied when the writer began, and it
// grew without end (75 MB a second under the bench's refresh scenario).
func TestLogRestartsUnderSteadyWrites(t *testing.T) {
	s := migrated(t)
	ctx := t.Context()
	stopReads := make(chan struct{})
	readsDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stopReads:
				readsDone <- nil
				return
			default:
			}
			if _, err := s.GetThrottle(ctx, "steady-0"); err != nil && !errors.Is(err, storage.ErrNotFound) {
				readsDone <- err
				return
			}
		}
	}()
	var walMax int64
	// Written without a pause: without restarts, about 270 MB of log; with
	// them, the log stays within a few restarts' worth.
	const writes = 20000
	for i := range writes {
		if _, err := s.HitCounter(ctx, fmt.Sprintf("steady-%d", i), time.Hour, time.Now()); err != nil {
			t.Fatal(err)
		}
		if i%500 == 0 {
			if fi, err := os.Stat(s.path + "-wal"); err == nil {
				walMax = max(walMax, fi.Size())
			}
		}
	}
	close(stopReads)
	if err := <-readsDone; err != nil {
		t.Fatal(err)
	}
	if limit := int64(3 * restartFrames * 4096); walMax > limit {
		t.Fatalf("the log grew to %d bytes under steady writes (limit %d): it is never started over", walMax, limit)
	}
}
