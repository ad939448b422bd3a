package sqlite

import (
	"context"

	"github.com/caf-extranet/idp/storage"
)

const clientColumns = `id, name, secret_hash, public, redirect_uris, post_logout_redirect_uris, home_url, allow_refresh, created_at`

func scanClient(row rowScanner) (storage.Client, error) {
	var c storage.Client
	err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &c.Public, (*jsonList)(&c.RedirectURIs),
		(*jsonList)(&c.PostLogoutRedirectURIs), &c.HomeURL, &c.AllowRefresh, (*msTime)(&c.CreatedAt))
	return c, err
}

// CreateClient stores c; ErrDuplicate when the id is taken.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	return exec(ctx, s.w, "create client", `INSERT INTO clients (`+clientColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, c.SecretHash, boolInt(c.Public), jsonList(c.RedirectURIs),
		jsonList(c.PostLogoutRedirectURIs), c.HomeURL, boolInt(c.AllowRefresh), ms(c.CreatedAt))
}

// GetClient finds a client by id.
func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	c, err := scanClient(s.r.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id))
	if err != nil {
		return storage.Client{}, dbError("get client", err)
	}
	return c, nil
}

// ListClients lists every client, ordered by id.
func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY id`)
	if err != nil {
		return nil, dbError("list clients", err)
	}
	clients, err := collect(rows, scanClient)
	if err != nil {
		return nil, dbError("list clients", err)
	}
	return clients, nil
}

// DeleteClient removes a client; ErrNotFound when there is none.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return execOne(ctx, s.w, "delete client", `DELETE FROM clients WHERE id = ?`, id)
}
