// Package postgres is the PostgreSQL engine of storage.Store, for production
// deployments where several instances share one database. It uses pgx v5
// natively (pgxpool, no database/sql).
//
// Concurrency: every read-modify-write of the contract is either one
// conditional statement or one transaction that locks the rows it decides on
// (SELECT ... FOR UPDATE, FOR UPDATE SKIP LOCKED for work queues), so that it
// is correct under PostgreSQL's default READ COMMITTED isolation with any
// number of instances.
package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caf-extranet/idp/storage"
)

var _ storage.Store = (*Store)(nil)

// Store is a storage.Store backed by a PostgreSQL connection pool.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects a pool to url (a postgres:// URL; extra query parameters such
// as search_path are passed by pgx as runtime parameters) and pings once, so
// that a wrong address fails at start rather than at the first request.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL, password included: do not wrap it.
		return nil, errors.New("postgres: invalid connection URL (expected postgres://user@host:port/db?...)")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: create pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: cannot reach database %q on %s:%d as %q: %w",
			cfg.ConnConfig.Database, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.User, err)
	}
	return &Store{pool: pool}, nil
}

// Pool exposes the pool, for metrics (pool statistics).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be released.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}
