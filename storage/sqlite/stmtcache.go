package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// maxCachedStatements bounds each pool's statement cache: the store's
// statements are a fixed set of a few dozen texts, and a query built with a
// varying text (a list of a varying length, a pragma with a value) past the
// bound simply runs unprepared instead of growing the cache forever.
const maxCachedStatements = 256

// pool is one of the store's two *sql.DB with a cache of prepared
// statements. Without it the driver parses and plans every statement again on
// each call (about half of SQLite's CPU time on the token paths); a *sql.Stmt
// keeps one prepared statement per connection of the pool and reuses it.
type pool struct {
	*sql.DB

	mu    sync.Mutex
	stmts map[string]*sql.Stmt
	// queued are statements first seen inside a transaction: they cannot be
	// prepared on the pool then (the writer's only connection is held by the
	// transaction, so preparing would wait for itself), and are prepared
	// once the transaction has ended.
	queued map[string]struct{}
}

func newPool(db *sql.DB) *pool {
	return &pool{DB: db, stmts: map[string]*sql.Stmt{}, queued: map[string]struct{}{}}
}

// cached returns the prepared statement for query, or nil if it has none yet.
func (p *pool) cached(query string) *sql.Stmt {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stmts[query]
}

// stmt returns the prepared statement for query, preparing it on first use.
// It must not be called while this goroutine holds a transaction of the pool.
// nil means "run it unprepared" (cache full, or preparation failed: the
// unprepared call then reports the same error as before).
func (p *pool) stmt(ctx context.Context, query string) *sql.Stmt {
	if st := p.cached(query); st != nil {
		return st
	}
	p.mu.Lock()
	full := len(p.stmts) >= maxCachedStatements
	p.mu.Unlock()
	if full {
		return nil
	}
	st, err := p.DB.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev, ok := p.stmts[query]; ok { // prepared meanwhile by another goroutine
		_ = st.Close()
		return prev
	}
	p.stmts[query] = st
	return st
}

// queue records a statement met inside a transaction, to prepare later.
func (p *pool) queue(query string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.stmts)+len(p.queued) < maxCachedStatements {
		p.queued[query] = struct{}{}
	}
}

// prepareQueued prepares the statements queued by transactions. Called with
// no transaction of the pool held; a failure leaves the statement unprepared.
func (p *pool) prepareQueued(ctx context.Context) {
	p.mu.Lock()
	if len(p.queued) == 0 {
		p.mu.Unlock()
		return
	}
	queries := make([]string, 0, len(p.queued))
	for q := range p.queued {
		queries = append(queries, q)
	}
	clear(p.queued)
	p.mu.Unlock()
	for _, q := range queries {
		p.stmt(ctx, q)
	}
}

// ExecContext is (*sql.DB).ExecContext through the statement cache.
func (p *pool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := p.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return p.DB.ExecContext(ctx, query, args...)
}

// QueryContext is (*sql.DB).QueryContext through the statement cache.
func (p *pool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.DB.QueryContext(ctx, query, args...)
}

// QueryRowContext is (*sql.DB).QueryRowContext through the statement cache.
func (p *pool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.DB.QueryRowContext(ctx, query, args...)
}

// Close closes the cached statements, then the pool.
func (p *pool) Close() error {
	p.mu.Lock()
	var errs []error
	for q, st := range p.stmts {
		errs = append(errs, st.Close())
		delete(p.stmts, q)
	}
	p.mu.Unlock()
	return errors.Join(append(errs, p.DB.Close())...)
}

// txConn is a write transaction whose statements use the writer's cache:
// tx.StmtContext reuses the statement already prepared on the writer's
// connection, which is the one the transaction holds.
type txConn struct {
	*sql.Tx
	pool *pool
}

// stmt returns the transaction's view of the cached statement for query, or
// nil (run it unprepared) when it is not cached yet, queueing it.
func (t *txConn) stmt(ctx context.Context, query string) *sql.Stmt {
	st := t.pool.cached(query)
	if st == nil {
		t.pool.queue(query)
		return nil
	}
	return t.Tx.StmtContext(ctx, st)
}

// ExecContext is (*sql.Tx).ExecContext through the writer's statement cache.
func (t *txConn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

// QueryContext is (*sql.Tx).QueryContext through the writer's statement cache.
func (t *txConn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

// QueryRowContext is (*sql.Tx).QueryRowContext through the writer's statement
// cache.
func (t *txConn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}
