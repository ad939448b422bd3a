package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/caf-extranet/idp/storage"
)

const signingKeyColumns = `id, algorithm, private_key_encrypted, public_key_jwk, created_at, not_before`

// ListSigningKeys lists the signing keys, oldest first.
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY created_at, seq`)
	if err != nil {
		return nil, dbError("list signing keys", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.SigningKey, error) {
		var k storage.SigningKey
		err := r.Scan(&k.ID, &k.Algorithm, &k.PrivateKeyEncrypted, &k.PublicKeyJWK, &k.CreatedAt, &k.NotBefore)
		k.CreatedAt, k.NotBefore = utc(k.CreatedAt), utc(k.NotBefore)
		return k, err
	})
	if err != nil {
		return nil, dbError("list signing keys", err)
	}
	return keys, nil
}

// AddSigningKey stores k only if the newest stored key is expectNewestID
// ("" for none); ErrConflict otherwise. The table lock (which still lets
// readers through) makes the check and the insert one step for every
// instance: two rotating at once cannot both add a key.
func (s *Store) AddSigningKey(ctx context.Context, k storage.SigningKey, expectNewestID string) error {
	const what = "add signing key"
	return s.withTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return dbError(what, err)
		}
		var newest string
		err := tx.QueryRow(ctx, `SELECT id FROM signing_keys ORDER BY created_at DESC, seq DESC LIMIT 1`).Scan(&newest)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return dbError(what, err)
		}
		if newest != expectNewestID {
			return conflict(what + ": newest key is " + quoteOrNone(newest))
		}
		_, err = tx.Exec(ctx, `INSERT INTO signing_keys (`+signingKeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
			k.ID, k.Algorithm, k.PrivateKeyEncrypted, k.PublicKeyJWK, k.CreatedAt, k.NotBefore)
		if err != nil {
			return dbError(what, err)
		}
		return nil
	})
}

func quoteOrNone(id string) string {
	if id == "" {
		return "none"
	}
	return `"` + id + `"`
}

// DeleteSigningKey removes a retired key; a missing one is not an error.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM signing_keys WHERE id = $1`, id); err != nil {
		return dbError("delete signing key", err)
	}
	return nil
}

// GetOrCreateSecret returns the secret stored under name, storing candidate
// first when there is none. ON CONFLICT DO NOTHING waits for a concurrent
// insert of the same name to commit; the following SELECT, with a fresh
// snapshot under READ COMMITTED, then reads whichever value won.
func (s *Store) GetOrCreateSecret(ctx context.Context, name string, candidate []byte) ([]byte, error) {
	const what = "get or create secret"
	var stored []byte
	err := s.pool.QueryRow(ctx, `INSERT INTO secrets (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO NOTHING RETURNING value`, name, candidate).Scan(&stored)
	if err == nil {
		return stored, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, dbError(what, err)
	}
	if err := s.pool.QueryRow(ctx, `SELECT value FROM secrets WHERE name = $1`, name).Scan(&stored); err != nil {
		return nil, dbError(what, err)
	}
	return stored, nil
}

// GetSecret returns the secret stored under name; ErrNotFound when none.
func (s *Store) GetSecret(ctx context.Context, name string) ([]byte, error) {
	var value []byte
	if err := s.pool.QueryRow(ctx, `SELECT value FROM secrets WHERE name = $1`, name).Scan(&value); err != nil {
		return nil, notFoundOr("get secret", err)
	}
	return value, nil
}
