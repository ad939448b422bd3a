package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/internal/sqlrow"
)

const userColumns = `id, email, name, organisation, password_hash, pending_password_change, disabled, created_at, updated_at`

func scanUser(row rowScanner) (storage.User, error) {
	var u storage.User
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.Organisation, &u.PasswordHash,
		&u.PendingPasswordChange, &u.Disabled, &u.CreatedAt, &u.UpdatedAt)
	u.CreatedAt, u.UpdatedAt = utc(u.CreatedAt), utc(u.UpdatedAt)
	return u, err
}

// CreateUser stores u with its e-mail normalised; ErrDuplicate when the id or
// the e-mail is taken.
func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	return insertUser(ctx, s.pool, u)
}

// insertUser is CreateUser on q, the pool or a transaction.
func insertUser(ctx context.Context, q querier, u storage.User) error {
	_, err := q.Exec(ctx, `INSERT INTO users (`+userColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		u.ID, storage.NormaliseEmail(u.Email), u.Name, u.Organisation, u.PasswordHash,
		u.PendingPasswordChange, u.Disabled, u.CreatedAt, u.UpdatedAt)
	if err != nil {
		return dbError("create user", err)
	}
	return nil
}

// GetUser finds a user by id.
func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err != nil {
		return storage.User{}, notFoundOr("get user", err)
	}
	return u, nil
}

// GetUserByEmail finds a user by e-mail, normalised first.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (storage.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`,
		storage.NormaliseEmail(email)))
	if err != nil {
		return storage.User{}, notFoundOr("get user by email", err)
	}
	return u, nil
}

// GetUserWithProvisional reads the agent and its provisional password in one
// statement.
func (s *Store) GetUserWithProvisional(ctx context.Context, email string) (storage.User, *storage.ProvisionalPassword, error) {
	var (
		hash               *string
		created, expiresAt *time.Time
	)
	u, err := scanUser(sqlrow.Suffix(s.pool.QueryRow(ctx, `SELECT `+sqlrow.Qualified("u.", userColumns)+`,
			p.hash, p.created_at, p.expires_at
		FROM users u LEFT JOIN provisional_passwords p ON p.user_id = u.id
		WHERE u.email = $1`, storage.NormaliseEmail(email)), &hash, &created, &expiresAt))
	if err != nil {
		return storage.User{}, nil, notFoundOr("get user with provisional password", err)
	}
	if hash == nil {
		return u, nil, nil
	}
	return u, &storage.ProvisionalPassword{UserID: u.ID, Hash: *hash, CreatedAt: utc(*created), ExpiresAt: utc(*expiresAt)}, nil
}

// GetUsersByEmail looks the addresses up in one statement.
func (s *Store) GetUsersByEmail(ctx context.Context, emails []string) ([]storage.User, error) {
	norm := make([]string, len(emails))
	for i, e := range emails {
		norm[i] = storage.NormaliseEmail(e)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users WHERE email = ANY($1) ORDER BY email`, norm)
	if err != nil {
		return nil, dbError("get users by email", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.User, error) { return scanUser(r) })
	if err != nil {
		return nil, dbError("get users by email", err)
	}
	return users, nil
}

// ListUsers lists every user, ordered by e-mail.
func (s *Store) ListUsers(ctx context.Context) ([]storage.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY email`)
	if err != nil {
		return nil, dbError("list users", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.User, error) { return scanUser(r) })
	if err != nil {
		return nil, dbError("list users", err)
	}
	return users, nil
}

// SetUserDisabled flips the flag; disabling also ends the agent's sessions and
// revokes its tokens, in the same transaction.
func (s *Store) SetUserDisabled(ctx context.Context, id string, disabled bool, now time.Time) error {
	return s.withTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET disabled = $2, updated_at = $3 WHERE id = $1`, id, disabled, now)
		if err := requireOne("set user disabled", tag, err); err != nil {
			return err
		}
		if !disabled {
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, id); err != nil {
			return dbError("disable user: delete sessions", err)
		}
		// A provisional password whose mail has not gone goes with it:
		// enabled again, the agent would hold a password it never
		// received. One already delivered stays, as a personal one does.
		if _, err := tx.Exec(ctx, `DELETE FROM provisional_passwords
			WHERE user_id = $1 AND EXISTS (SELECT 1 FROM outbox WHERE provisional_for = $1 AND status = $2)`,
			id, storage.MailPending); err != nil {
			return dbError("disable user: delete provisional password", err)
		}
		if err := endProvisionalMails(ctx, tx, id, storage.ProvisionalMailDisabled); err != nil {
			return err
		}
		return revokeUserTokens(ctx, tx, id)
	})
}

// UpdatePasswordHash swaps the personal hash only if it is still oldHash.
func (s *Store) UpdatePasswordHash(ctx context.Context, id, oldHash, newHash string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET password_hash = $3, updated_at = $4
		WHERE id = $1 AND password_hash = $2`, id, oldHash, newHash, now)
	if err != nil {
		return dbError("update password hash", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	return s.conflictOrNotFound(ctx, "update password hash", id)
}

// SetPendingPasswordChange marks or clears "pending password change".
func (s *Store) SetPendingPasswordChange(ctx context.Context, id string, pending bool, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET pending_password_change = $2, updated_at = $3 WHERE id = $1`,
		id, pending, now)
	return requireOne("set pending password change", tag, err)
}

// conflictOrNotFound explains why a conditional update of a user changed
// nothing: the user is gone (ErrNotFound) or the precondition failed
// (ErrConflict).
func (s *Store) conflictOrNotFound(ctx context.Context, what, id string) error {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, id).Scan(&exists); err != nil {
		return dbError(what, err)
	}
	if !exists {
		return notFound(what)
	}
	return conflict(what)
}
