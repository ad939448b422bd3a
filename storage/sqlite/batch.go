package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Group commit. SQLite has one writer: every write transaction of the
// process took the writer connection in turn, each handover waking a
// goroutine, each transaction ending with its own commit (the log's pages
// written, the log index updated). Under load, half a dozen writers queued
// at once while the cores idled. Now one goroutine runs the write
// transactions that are waiting together, in one SQLite transaction with one
// commit; each caller's function runs inside a savepoint of its own, so that
// its failure undoes its writes only, and every caller learns its outcome
// once the commit is done (never before: a write is reported done only when
// it is committed). Alone, a caller's function runs exactly as before, in a
// transaction of its own.

// maxBatch bounds how many callers share one commit: a long batch would
// hold the first caller for the others' work.
const maxBatch = 16

var errStoreClosed = errors.New("sqlite: store closed")

// writeRequest is one caller's write transaction.
type writeRequest struct {
	ctx  context.Context
	fn   func(tx *txConn) error
	done chan error // buffered: the batcher never waits for the caller
}

// batcher runs the queued write transactions (see group commit above).
type batcher struct {
	requests chan *writeRequest
	stop     chan struct{}
	stopped  sync.WaitGroup
	once     sync.Once
	// largest is the most callers one commit has served (for the tests).
	largest atomic.Int64
}

func (s *Store) startBatcher() {
	s.batch = &batcher{requests: make(chan *writeRequest), stop: make(chan struct{})}
	s.batch.stopped.Add(1)
	go s.runBatcher()
}

// stopBatcher ends the batcher once the transaction it runs is over; writes
// that come later get errStoreClosed.
func (s *Store) stopBatcher() {
	s.batch.once.Do(func() { close(s.batch.stop) })
	s.batch.stopped.Wait()
}

func (s *Store) runBatcher() {
	defer s.batch.stopped.Done()
	for {
		var first *writeRequest
		select {
		case <-s.batch.stop:
			return
		case first = <-s.batch.requests:
		}
		batch := []*writeRequest{first}
	gather:
		for len(batch) < maxBatch {
			select {
			case r := <-s.batch.requests:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		if s.ckpt.restartWanted.Swap(false) {
			// A failure loses nothing: the log keeps growing until the next
			// checkpoint asks again.
			_ = restartLog(context.Background(), s.w)
		}
		if n := int64(len(batch)); n > s.batch.largest.Load() {
			s.batch.largest.Store(n)
		}
		s.runBatch(batch)
	}
}

// writeTx runs fn in a write transaction: together with the other callers
// waiting at that moment, each in a savepoint of its own (see group commit).
// fn's error rolls its writes back; a commitAndFail error keeps them and is
// returned after the commit.
func (s *Store) writeTx(ctx context.Context, fn func(tx *txConn) error) error {
	r := &writeRequest{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.batch.requests <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.batch.stop:
		return errStoreClosed
	}
	return <-r.done
}

// runBatch runs the batch's functions in one transaction and tells each
// caller its outcome after the commit.
func (s *Store) runBatch(batch []*writeRequest) {
	// The transaction serves several callers: none of their contexts may
	// end it. Each function's statements still run with its caller's.
	ctx := context.Background()
	defer s.w.prepareQueued(ctx) // statements first met inside the transaction
	results := make([]error, len(batch))
	tell := func() {
		for i, r := range batch {
			var kept *keepError
			if errors.As(results[i], &kept) {
				results[i] = kept.err
			}
			r.done <- results[i]
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		for i := range results {
			results[i] = fmt.Errorf("sqlite: begin: %w", err)
		}
		tell()
		return
	}
	tc := &txConn{Tx: tx, pool: s.w}
	if len(batch) == 1 {
		results[0] = runWrite(batch[0], tc)
		if !keepsWrites(results[0]) {
			_ = tx.Rollback() // the error that matters is the function's
			tell()
			return
		}
	} else {
		for i, r := range batch {
			if lost := s.runInSavepoint(ctx, tc, r, &results[i]); lost != nil {
				// SQLite ended the whole transaction (a failure it does not
				// confine to a statement): nobody's writes are kept.
				_ = tx.Rollback()
				for j := range results {
					if keepsWrites(results[j]) {
						results[j] = lost
					}
				}
				tell()
				return
			}
		}
	}
	if err := tx.Commit(); err != nil {
		for i := range results {
			if keepsWrites(results[i]) {
				results[i] = fmt.Errorf("sqlite: commit: %w", err)
			}
		}
	}
	tell()
}

// runInSavepoint runs r's function between SAVEPOINT and RELEASE, rolling
// back to the savepoint when it fails; *result is its outcome. It returns a
// non-nil error only when the transaction itself is lost.
func (s *Store) runInSavepoint(ctx context.Context, tc *txConn, r *writeRequest, result *error) error {
	if _, err := tc.Tx.ExecContext(ctx, `SAVEPOINT caller`); err != nil {
		return fmt.Errorf("sqlite: savepoint: %w", err)
	}
	*result = runWrite(r, tc)
	if !keepsWrites(*result) {
		if _, err := tc.Tx.ExecContext(ctx, `ROLLBACK TO caller`); err != nil {
			return fmt.Errorf("sqlite: rollback to savepoint: %w (after %w)", err, *result)
		}
	}
	if _, err := tc.Tx.ExecContext(ctx, `RELEASE caller`); err != nil {
		return fmt.Errorf("sqlite: release savepoint: %w", err)
	}
	return nil
}

// runWrite runs a caller's function; a caller gone before its turn is
// skipped, and a panic is that caller's error, not the batcher's end.
func runWrite(r *writeRequest, tc *txConn) (err error) {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sqlite: write transaction panicked: %v", p)
		}
	}()
	return r.fn(tc)
}

// write runs a write of a few statements through the batcher, so that it
// shares a commit with the writes waiting at the same time instead of taking
// the writer connection on its own.
func (s *Store) write(ctx context.Context, fn func(q querier) error) error {
	return s.writeTx(ctx, func(tx *txConn) error { return fn(tx) })
}

// keepsWrites: success, or a commitAndFail error.
func keepsWrites(err error) bool {
	var kept *keepError
	return err == nil || errors.As(err, &kept)
}
