package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/internal/sqlrow"
)

const userColumns = `id, email, name, organisation, password_hash, pending_password_change, disabled, created_at, updated_at`

func scanUser(row rowScanner) (storage.User, error) {
	var u storage.User
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.Organisation, &u.PasswordHash,
		&u.PendingPasswordChange, &u.Disabled, (*msTime)(&u.CreatedAt), (*msTime)(&u.UpdatedAt))
	return u, err
}

// CreateUser stores u with its e-mail normalised; ErrDuplicate when the id or
// the e-mail is taken.
func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	return insertUser(ctx, s.w, u)
}

// insertUser is CreateUser on q, a transaction's or the writer's.
func insertUser(ctx context.Context, q querier, u storage.User) error {
	return exec(ctx, q, "create user", `INSERT INTO users (`+userColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, storage.NormaliseEmail(u.Email), u.Name, u.Organisation, u.PasswordHash,
		boolInt(u.PendingPasswordChange), boolInt(u.Disabled), ms(u.CreatedAt), ms(u.UpdatedAt))
}

// GetUser finds a user by id.
func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if err != nil {
		return storage.User{}, dbError("get user", err)
	}
	return u, nil
}

// GetUserByEmail finds a user by e-mail, normalised first.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (storage.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = ?`,
		storage.NormaliseEmail(email)))
	if err != nil {
		return storage.User{}, dbError("get user by email", err)
	}
	return u, nil
}

// GetUserWithProvisional reads the agent and its provisional password in one
// statement.
func (s *Store) GetUserWithProvisional(ctx context.Context, email string) (storage.User, *storage.ProvisionalPassword, error) {
	var (
		hash               sql.NullString
		created, expiresAt *time.Time
	)
	u, err := scanUser(sqlrow.Suffix(s.r.QueryRowContext(ctx, `SELECT `+sqlrow.Qualified("u.", userColumns)+`,
			p.hash, p.created_at, p.expires_at
		FROM users u LEFT JOIN provisional_passwords p ON p.user_id = u.id
		WHERE u.email = ?`, storage.NormaliseEmail(email)), &hash, msTimePtr{&created}, msTimePtr{&expiresAt}))
	if err != nil {
		return storage.User{}, nil, dbError("get user with provisional password", err)
	}
	if !hash.Valid {
		return u, nil, nil
	}
	return u, &storage.ProvisionalPassword{UserID: u.ID, Hash: hash.String, CreatedAt: *created, ExpiresAt: *expiresAt}, nil
}

// GetUsersByEmail looks the addresses up in one statement; they go as one
// JSON array, so that every number of them is the same statement.
func (s *Store) GetUsersByEmail(ctx context.Context, emails []string) ([]storage.User, error) {
	list, err := json.Marshal(normaliseEmails(emails))
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+userColumns+` FROM users
		WHERE email IN (SELECT value FROM json_each(?)) ORDER BY email`, string(list))
	if err != nil {
		return nil, dbError("get users by email", err)
	}
	users, err := collect(rows, scanUser)
	if err != nil {
		return nil, dbError("get users by email", err)
	}
	return users, nil
}

func normaliseEmails(emails []string) []string {
	out := make([]string, len(emails))
	for i, e := range emails {
		out[i] = storage.NormaliseEmail(e)
	}
	return out
}

// ListUsers lists every user, ordered by e-mail (the unique index's order).
func (s *Store) ListUsers(ctx context.Context) ([]storage.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY email`)
	if err != nil {
		return nil, dbError("list users", err)
	}
	users, err := collect(rows, scanUser)
	if err != nil {
		return nil, dbError("list users", err)
	}
	return users, nil
}

// SetUserDisabled flips the flag; disabling also ends the agent's sessions and
// revokes its tokens, in the same transaction.
func (s *Store) SetUserDisabled(ctx context.Context, id string, disabled bool, now time.Time) error {
	return s.writeTx(ctx, func(tx *txConn) error {
		if err := execOne(ctx, tx, "set user disabled",
			`UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?`, boolInt(disabled), ms(now), id); err != nil {
			return err
		}
		if !disabled {
			return nil
		}
		if err := exec(ctx, tx, "disable user: delete sessions", `DELETE FROM sessions WHERE user_id = ?`, id); err != nil {
			return err
		}
		// A provisional password whose mail has not gone goes with it:
		// enabled again, the agent would hold a password it never
		// received. One already delivered stays, as a personal one does.
		if err := exec(ctx, tx, "disable user: delete provisional password", `DELETE FROM provisional_passwords
			WHERE user_id = ? AND EXISTS (SELECT 1 FROM outbox WHERE provisional_for = ? AND status = ?)`,
			id, id, storage.MailPending); err != nil {
			return err
		}
		if err := endProvisionalMails(ctx, tx, id, storage.ProvisionalMailDisabled); err != nil {
			return err
		}
		return revokeUserTokens(ctx, tx, id)
	})
}

// UpdatePasswordHash swaps the personal hash only if it is still oldHash:
// ErrConflict when it changed, ErrNotFound when the agent does not exist.
func (s *Store) UpdatePasswordHash(ctx context.Context, id, oldHash, newHash string, now time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE users SET password_hash = ?, updated_at = ?
		WHERE id = ? AND password_hash = ?`, newHash, ms(now), id, oldHash)
	if err != nil {
		return dbError("update password hash", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	return s.conflictOrNotFound(ctx, "update password hash", id)
}

// SetPendingPasswordChange marks or clears "pending password change".
func (s *Store) SetPendingPasswordChange(ctx context.Context, id string, pending bool, now time.Time) error {
	return execOne(ctx, s.w, "set pending password change",
		`UPDATE users SET pending_password_change = ?, updated_at = ? WHERE id = ?`, boolInt(pending), ms(now), id)
}

// conflictOrNotFound explains why a conditional update of a user changed
// nothing: the user does not exist (ErrNotFound) or the precondition failed
// (ErrConflict). Users are never deleted, so reading afterwards is sound.
func (s *Store) conflictOrNotFound(ctx context.Context, what, id string) error {
	var exists bool
	if err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = ?)`, id).Scan(&exists); err != nil {
		return dbError(what, err)
	}
	if !exists {
		return notFound(what)
	}
	return conflict(what)
}
