package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// GetOrCreateSecret returns the secret stored under name, storing candidate
// first when there is none. One upsert statement that leaves an existing
// value alone and returns whichever value is stored, so concurrent callers
// all get the first one.
func (s *Store) GetOrCreateSecret(ctx context.Context, name string, candidate []byte) ([]byte, error) {
	var value []byte
	err := s.w.QueryRowContext(ctx, `INSERT INTO secrets (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = secrets.value
		RETURNING value`, name, nonNil(candidate)).Scan(&value)
	if err != nil {
		return nil, dbError("get or create secret", err)
	}
	return value, nil
}

// GetSecret returns the secret stored under name; ErrNotFound when none.
func (s *Store) GetSecret(ctx context.Context, name string) ([]byte, error) {
	var value []byte
	if err := s.r.QueryRowContext(ctx, `SELECT value FROM secrets WHERE name = ?`, name).Scan(&value); err != nil {
		return nil, dbError("get secret", err)
	}
	return value, nil
}

// HitCounter counts one hit on key in a fixed window and returns the count in
// the current window. One upsert statement: SQLite evaluates every SET
// expression on the row as it was, so the window restarts (count 1) on the
// first hit after it ended, and concurrent hits all count. window_end is
// kept for the purge only.
func (s *Store) HitCounter(ctx context.Context, key string, window time.Duration, now time.Time) (int64, error) {
	var count int64
	err := s.write(ctx, func(q querier) error {
		var err error
		count, err = hitCounter(ctx, q, key, window, now)
		return err
	})
	if err != nil {
		return 0, dbError("hit counter", err)
	}
	return count, nil
}

func hitCounter(ctx context.Context, q querier, key string, window time.Duration, now time.Time) (int64, error) {
	var count int64
	err := q.QueryRowContext(ctx, `INSERT INTO counters (key, window_start, window_end, count)
		VALUES (?1, ?2, ?2 + ?3, 1)
		ON CONFLICT (key) DO UPDATE SET
			window_start = CASE WHEN counters.window_start + ?3 <= ?2 THEN ?2 ELSE counters.window_start END,
			window_end   = CASE WHEN counters.window_start + ?3 <= ?2 THEN ?2 ELSE counters.window_start END + ?3,
			count        = CASE WHEN counters.window_start + ?3 <= ?2 THEN 1 ELSE counters.count + 1 END
		RETURNING count`, key, ms(now), window.Milliseconds()).Scan(&count)
	return count, err
}

const signingKeyColumns = `id, algorithm, private_key_encrypted, public_key_jwk, created_at, not_before`

// ListSigningKeys lists the signing keys, oldest first (ties in insertion
// order).
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY created_at, seq`)
	if err != nil {
		return nil, dbError("list signing keys", err)
	}
	keys, err := collect(rows, func(r rowScanner) (storage.SigningKey, error) {
		var k storage.SigningKey
		err := r.Scan(&k.ID, &k.Algorithm, &k.PrivateKeyEncrypted, &k.PublicKeyJWK,
			(*msTime)(&k.CreatedAt), (*msTime)(&k.NotBefore))
		return k, err
	})
	if err != nil {
		return nil, dbError("list signing keys", err)
	}
	return keys, nil
}

// AddSigningKey stores k only if the newest stored key is expectNewestID (""
// for an empty table), ErrConflict otherwise. The check and the insert share
// one write transaction, so two instances rotating at once add one key.
func (s *Store) AddSigningKey(ctx context.Context, k storage.SigningKey, expectNewestID string) error {
	return s.writeTx(ctx, func(tx *txConn) error {
		var newest string
		err := tx.QueryRowContext(ctx, `SELECT id FROM signing_keys ORDER BY created_at DESC, seq DESC LIMIT 1`).Scan(&newest)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return dbError("add signing key", err)
		}
		if newest != expectNewestID {
			return conflict("add signing key: newest key is " + quoteOrNone(newest))
		}
		return exec(ctx, tx, "add signing key", `INSERT INTO signing_keys (`+signingKeyColumns+`)
			VALUES (?, ?, ?, ?, ?, ?)`,
			k.ID, k.Algorithm, nonNil(k.PrivateKeyEncrypted), nonNil(k.PublicKeyJWK), ms(k.CreatedAt), ms(k.NotBefore))
	})
}

// DeleteSigningKey removes a retired key; a missing one is not an error.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	return exec(ctx, s.w, "delete signing key", `DELETE FROM signing_keys WHERE id = ?`, id)
}

func quoteOrNone(id string) string {
	if id == "" {
		return "none"
	}
	return `"` + id + `"`
}

// nonNil makes a nil byte slice storable in a NOT NULL BLOB column: the
// driver binds nil as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
