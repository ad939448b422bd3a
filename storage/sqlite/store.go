// Package sqlite is the embedded engine of storage.Store: one SQLite file
// (modernc.org/sqlite, pure Go) through database/sql.
//
// Concurrency: the file is in WAL mode, so readers never block the writer nor
// each other, while writes serialise. The store keeps two pools on the file:
// a writer pool of exactly one connection, so that this process's writers
// queue in database/sql (honouring their contexts) instead of spinning on
// SQLITE_BUSY, and a read-only pool of several connections for plain reads.
// Every write transaction begins with BEGIN IMMEDIATE (DSN _txlock), taking
// the write lock up front: a transaction that reads and then decides to write
// can never fail upgrading its lock, and other processes sharing the file wait
// on busy_timeout. Every read-modify-write of the contract is therefore one
// statement or one such transaction.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/caf-extranet/idp/storage"
)

var _ storage.Store = (*Store)(nil)

// Store is a storage.Store on one SQLite file.
type Store struct {
	w    *pool // writes: one connection, BEGIN IMMEDIATE
	r    *pool // reads: several connections, query_only
	ckpt *checkpointer
	// batch runs the write transactions (group commit: see batch.go).
	batch *batcher
	path  string
}

// connectionPragmas run on every new connection of both pools, in this
// order: busy_timeout first, so that the others wait for a lock held by
// another process instead of failing (see ensureWAL for the one case where
// SQLite does not wait).
var connectionPragmas = []string{
	"busy_timeout(10000)",
	"journal_mode(WAL)",
	"foreign_keys(ON)",
	"synchronous(NORMAL)",
}

// walSwitchTimeout bounds how long Open retries switching a new file to WAL
// while other processes hold it (as busy_timeout bounds other waits).
const walSwitchTimeout = 10 * time.Second

// ensureWAL switches the file to WAL mode (persistent: done once per file).
// SQLite does not call the busy handler while changing the journal mode, so
// two processes opening a new file together would see SQLITE_BUSY from the
// journal_mode pragma of the DSN: this first switch is retried here, on a
// connection of its own, before the pools connect. On a file already in WAL
// mode the pools' pragma is a no-op that does not contend.
func ensureWAL(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", path+"?"+url.Values{"_pragma": {connectionPragmas[0]}}.Encode())
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, walSwitchTimeout)
	defer cancel()
	delay := 5 * time.Millisecond
	for {
		var mode string
		err := db.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode)
		switch {
		case err == nil && strings.EqualFold(mode, "wal"):
			return nil
		case err == nil:
			return fmt.Errorf("sqlite: %s: cannot use WAL mode (journal mode stays %q)", path, mode)
		case !isBusy(err):
			return fmt.Errorf("sqlite: open %s: switch to WAL: %w", path, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("sqlite: open %s: switch to WAL: %w (%w)", path, err, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// dsn builds the driver's data source name for path. A plain file name (not
// a file: URI) keeps SQLite's URI parameters out of the way; the driver
// strips the query and applies its own parameters.
func dsn(path string, extra ...string) string {
	q := url.Values{}
	for _, p := range connectionPragmas {
		q.Add("_pragma", p)
	}
	for _, p := range extra {
		q.Add("_pragma", p)
	}
	return path + "?" + q.Encode()
}

// Open opens (creating the file and its parent directory if needed) the
// SQLite database at path. It does not migrate: call Migrate.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || strings.Contains(path, ":memory:") {
		// The driver reads everything after '?' as its parameters, and an
		// in-memory database would not be shared between the two pools.
		return nil, fmt.Errorf("sqlite: unsupported database path %q: want a plain file path", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create directory for %s: %w", path, err)
	}

	if err := ensureWAL(ctx, path); err != nil {
		return nil, err
	}

	// No automatic checkpoints on the writer: see checkpointer.
	w, err := sql.Open("sqlite", dsn(path, "wal_autocheckpoint(0)")+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// One writer connection, kept open: writes serialise in the file anyway.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	// query_only makes an accidental write through the read pool fail
	// instead of competing with the writer.
	r, err := sql.Open("sqlite", dsn(path, "query_only(1)"))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	readers := max(4, runtime.NumCPU())
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	if err := r.PingContext(ctx); err != nil {
		_ = w.Close()
		_ = r.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	ckpt, err := startCheckpointer(path, checkpointEvery, restartFrames)
	if err != nil {
		_ = w.Close()
		_ = r.Close()
		return nil, err
	}
	s := &Store{w: newPool(w), r: newPool(r), ckpt: ckpt, path: path}
	s.startBatcher()
	return s, nil
}

// Ping checks that the database answers, on both pools.
func (s *Store) Ping(ctx context.Context) error {
	for _, db := range []*pool{s.w, s.r} {
		var one int
		if err := db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
			return fmt.Errorf("sqlite: ping %s: %w", s.path, err)
		}
	}
	return nil
}

// Close lets SQLite refresh its planner statistics, then closes both pools.
func (s *Store) Close() error {
	// Recommended before closing a long-lived connection; cheap, and it only
	// analyses tables whose statistics are stale. A failure changes nothing.
	s.stopBatcher()
	_, _ = s.w.ExecContext(context.Background(), `PRAGMA optimize`)
	return errors.Join(s.ckpt.stop(), s.r.Close(), s.w.Close())
}
