package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/caf-extranet/idp/storage"
)

const clientColumns = `id, name, secret_hash, public, redirect_uris, post_logout_redirect_uris, home_url, allow_refresh, created_at`

func scanClient(row rowScanner) (storage.Client, error) {
	var c storage.Client
	err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &c.Public, &c.RedirectURIs,
		&c.PostLogoutRedirectURIs, &c.HomeURL, &c.AllowRefresh, &c.CreatedAt)
	c.CreatedAt = utc(c.CreatedAt)
	return c, err
}

// CreateClient stores c; ErrDuplicate when the id is taken.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO clients (`+clientColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		c.ID, c.Name, c.SecretHash, c.Public, list(c.RedirectURIs),
		list(c.PostLogoutRedirectURIs), c.HomeURL, c.AllowRefresh, c.CreatedAt)
	if err != nil {
		return dbError("create client", err)
	}
	return nil
}

// GetClient finds a client by id.
func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	c, err := scanClient(s.pool.QueryRow(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id))
	if err != nil {
		return storage.Client{}, notFoundOr("get client", err)
	}
	return c, nil
}

// ListClients lists every client, ordered by id.
func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY id`)
	if err != nil {
		return nil, dbError("list clients", err)
	}
	clients, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Client, error) { return scanClient(r) })
	if err != nil {
		return nil, dbError("list clients", err)
	}
	return clients, nil
}

// DeleteClient removes a client; ErrNotFound when there is none.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM clients WHERE id = $1`, id)
	return requireOne("delete client", tag, err)
}
