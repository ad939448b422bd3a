package sqlite

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestGroupCommit: callers waiting together share one commit, and each gets
// its own outcome: a failure undoes its writes only, a commitAndFail keeps
// them, a panic is that caller's error, and the batcher goes on.
func TestGroupCommit(t *testing.T) {
	s := migrated(t)
	ctx := t.Context()
	insert := func(tx *txConn, key string) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO counters (key, window_start, count) VALUES (?, 0, 1)`, key)
		return err
	}
	// A holds the batcher until the others are all queued behind it.
	release := make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- s.writeTx(ctx, func(tx *txConn) error { <-release; return insert(tx, "a") })
	}()
	errPlain, errKept := errors.New("refused"), errors.New("kept, but refused")
	callers := map[string]func(tx *txConn) error{
		"b": func(tx *txConn) error { return insert(tx, "b") },
		"c": func(tx *txConn) error {
			if err := insert(tx, "c"); err != nil {
				return err
			}
			return errPlain
		},
		"d": func(tx *txConn) error {
			if err := insert(tx, "d"); err != nil {
				return err
			}
			return commitAndFail(errKept)
		},
		"e": func(tx *txConn) error {
			if err := insert(tx, "e"); err != nil {
				return err
			}
			panic("boom")
		},
		"f": func(tx *txConn) error { return insert(tx, "f") },
	}
	results := make(map[string]chan error, len(callers))
	for name, fn := range callers {
		ch := make(chan error, 1)
		results[name] = ch
		go func() { ch <- s.writeTx(ctx, fn) }()
	}
	time.Sleep(100 * time.Millisecond) // all five are queued behind A
	close(release)
	if err := <-held; err != nil {
		t.Fatalf("A: %v", err)
	}
	got := map[string]error{}
	for name, ch := range results {
		got[name] = <-ch
	}
	if got["b"] != nil || got["f"] != nil {
		t.Errorf("b, f: %v, %v", got["b"], got["f"])
	}
	if !errors.Is(got["c"], errPlain) || !errors.Is(got["d"], errKept) {
		t.Errorf("c: %v, d: %v", got["c"], got["d"])
	}
	if got["e"] == nil || !containsAll(got["e"].Error(), "panicked", "boom") {
		t.Errorf("e (panicked): %v", got["e"])
	}
	if n := s.batch.largest.Load(); n < 2 {
		t.Fatalf("the queued callers never shared a commit (largest batch %d)", n)
	}
	for key, want := range map[string]bool{"a": true, "b": true, "c": false, "d": true, "e": false, "f": true} {
		var n int
		if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM counters WHERE key = ?`, key).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if (n == 1) != want {
			t.Errorf("row %q: %d, want present=%v", key, n, want)
		}
	}
	// The batcher is still there.
	if err := s.writeTx(ctx, func(tx *txConn) error { return insert(tx, "g") }); err != nil {
		t.Fatalf("after the batch: %v", err)
	}
}

// TestWritesAfterClose: a write after Close is refused, not stuck.
func TestWritesAfterClose(t *testing.T) {
	s := migrated(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.writeTx(ctx, func(tx *txConn) error { return nil })
	if !errors.Is(err, errStoreClosed) {
		t.Fatalf("write after Close: %v", err)
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
