package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/caf-extranet/idp/storage"
)

const clientColumns = `id, name, secret_hash, public, redirect_uris, post_logout_redirect_uris, home_url, allow_refresh, restricted, created_at`

func scanClient(row rowScanner) (storage.Client, error) {
	var c storage.Client
	err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &c.Public, &c.RedirectURIs,
		&c.PostLogoutRedirectURIs, &c.HomeURL, &c.AllowRefresh, &c.Restricted, &c.CreatedAt)
	c.CreatedAt = utc(c.CreatedAt)
	return c, err
}

// CreateClient stores c; ErrDuplicate when the id is taken.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO clients (`+clientColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		c.ID, c.Name, c.SecretHash, c.Public, list(c.RedirectURIs),
		list(c.PostLogoutRedirectURIs), c.HomeURL, c.AllowRefresh, c.Restricted, c.CreatedAt)
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

// DeleteClient removes a client (ErrNotFound when there is none) and, in the
// same transaction, revokes its tokens and deletes its habilitations: a
// removed application keeps no way in. The client row is deleted first, so
// a concurrent GrantHabilitation (which shares that row) either commits
// before, and its habilitation is deleted here, or finds no client.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return s.withTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM clients WHERE id = $1`, id)
		if err := requireOne("delete client", tag, err); err != nil {
			return err
		}
		for _, stmt := range []struct{ what, sql string }{
			{"revoke access tokens", `UPDATE access_tokens SET revoked = true WHERE client_id = $1 AND NOT revoked`},
			{"revoke refresh tokens", `UPDATE refresh_tokens SET revoked = true WHERE client_id = $1 AND NOT revoked`},
			{"delete habilitations", `DELETE FROM habilitations WHERE client_id = $1`},
		} {
			if _, err := tx.Exec(ctx, stmt.sql, id); err != nil {
				return dbError("delete client: "+stmt.what, err)
			}
		}
		return nil
	})
}

// SetClientRestricted sets whether only habilitated agents may enter the
// client; ErrNotFound when there is none.
func (s *Store) SetClientRestricted(ctx context.Context, clientID string, restricted bool) error {
	tag, err := s.pool.Exec(ctx, `UPDATE clients SET restricted = $2 WHERE id = $1`, clientID, restricted)
	return requireOne("set client restricted", tag, err)
}
