package storage

import (
	"context"
	"iter"
)

// BulkImporter is an optional capability of an engine: loading many records
// at once, for `idp user import` (administrators migrating existing
// accounts), `idp habilitation import` and for seeding benchmark databases.
// It is not part of Store because no request path needs it; callers find it
// with a type assertion.
type BulkImporter interface {
	// ImportUsers stores every user of the sequence in one transaction: all
	// of them or, on any error (a duplicate e-mail or id gives ErrDuplicate,
	// an error yielded by the sequence is returned as is), none. E-mails are
	// normalised as by CreateUser. It returns how many users were stored.
	// The sequence is read once, so a caller can stream a large file.
	ImportUsers(ctx context.Context, users iter.Seq2[User, error]) (int, error)
	// ExistingEmails returns which of emails (normalised first) already
	// belong to an account, in no particular order: a whole file is checked
	// before anything is imported, in a few queries.
	ExistingEmails(ctx context.Context, emails []string) ([]string, error)
	// AppendAuditBatch appends events in one transaction; the store assigns
	// their IDs.
	AppendAuditBatch(ctx context.Context, events []AuditEvent) error
	// GrantHabilitations grants every habilitation of hs, in order, as
	// successive GrantHabilitation calls would (a pair given twice ends
	// with the later one), but in one transaction: all of them or, on any
	// error (ErrNotFound when an agent or a client does not exist), none.
	// For `idp habilitation import`, whose file is granted whole or not
	// at all.
	GrantHabilitations(ctx context.Context, hs []Habilitation) error
}
