package sqlite

import (
	"context"

	"github.com/caf-extranet/idp/storage"
)

const clientColumns = `id, name, secret_hash, public, redirect_uris, post_logout_redirect_uris, home_url, allow_refresh, restricted, created_at`

func scanClient(row rowScanner) (storage.Client, error) {
	var c storage.Client
	err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &c.Public, (*jsonList)(&c.RedirectURIs),
		(*jsonList)(&c.PostLogoutRedirectURIs), &c.HomeURL, &c.AllowRefresh, &c.Restricted, (*msTime)(&c.CreatedAt))
	return c, err
}

// CreateClient stores c; ErrDuplicate when the id is taken.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	return exec(ctx, s.w, "create client", `INSERT INTO clients (`+clientColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, c.SecretHash, boolInt(c.Public), jsonList(c.RedirectURIs),
		jsonList(c.PostLogoutRedirectURIs), c.HomeURL, boolInt(c.AllowRefresh), boolInt(c.Restricted), ms(c.CreatedAt))
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

// DeleteClient removes a client (ErrNotFound when there is none) and, in the
// same transaction, revokes its tokens and deletes its habilitations: a
// removed application keeps no way in.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return s.writeTx(ctx, func(tx *txConn) error {
		if err := execOne(ctx, tx, "delete client", `DELETE FROM clients WHERE id = ?`, id); err != nil {
			return err
		}
		if err := exec(ctx, tx, "delete client: revoke access tokens",
			`UPDATE access_tokens SET revoked = 1 WHERE client_id = ? AND revoked = 0`, id); err != nil {
			return err
		}
		if err := exec(ctx, tx, "delete client: revoke refresh tokens",
			`UPDATE refresh_tokens SET revoked = 1 WHERE client_id = ? AND revoked = 0`, id); err != nil {
			return err
		}
		return exec(ctx, tx, "delete client: habilitations", `DELETE FROM habilitations WHERE client_id = ?`, id)
	})
}

// SetClientRestricted sets whether only habilitated agents may enter the
// client; ErrNotFound when there is none.
func (s *Store) SetClientRestricted(ctx context.Context, clientID string, restricted bool) error {
	return execOne(ctx, s.w, "set client restricted",
		`UPDATE clients SET restricted = ? WHERE id = ?`, boolInt(restricted), clientID)
}
