package sqlite

import (
	"fmt"
	"os"
	"testing"
	"time"
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
