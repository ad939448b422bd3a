package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/postgres/pgtest"
)

func TestImportUsers(t *testing.T) {
	url := pgtest.URL(t)
	s := openStore(t, url)
	migrate(t, s)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	users := func(n int, prefix string) func(yield func(storage.User, error) bool) {
		return func(yield func(storage.User, error) bool) {
			for i := range n {
				u := storage.User{ID: storage.NewID(), Email: fmt.Sprintf(" %sAgent%04d@Bulk.FR ", prefix, i), Name: "Agent",
					PasswordHash: "$argon2id$x", CreatedAt: now, UpdatedAt: now}
				if !yield(u, nil) {
					return
				}
			}
		}
	}
	n, err := s.ImportUsers(ctx, users(1234, ""))
	if err != nil || n != 1234 {
		t.Fatalf("import: %d, %v", n, err)
	}
	u, err := s.GetUserByEmail(ctx, "agent1233@bulk.fr")
	if err != nil || u.Email != "agent1233@bulk.fr" || !u.CreatedAt.Equal(now) || u.Disabled {
		t.Fatalf("imported user: %+v, %v", u, err)
	}
	// The planner knows of the new rows at once (ANALYZE): a table never
	// analysed has reltuples -1.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var planned float64
	if err := conn.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE oid = 'users'::regclass`).Scan(&planned); err != nil {
		t.Fatal(err)
	}
	if planned != 1234 {
		t.Errorf("the planner counts %v agents after importing 1234: the import did not refresh its statistics", planned)
	}

	// A duplicate keeps every row out.
	dup := func(yield func(storage.User, error) bool) {
		for u := range users(3, "new-") {
			if !yield(u, nil) {
				return
			}
		}
		yield(storage.User{ID: storage.NewID(), Email: "agent0000@bulk.fr", CreatedAt: now, UpdatedAt: now}, nil)
	}
	if _, err := s.ImportUsers(ctx, dup); !errors.Is(err, storage.ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := s.GetUserByEmail(ctx, "new-agent0000@bulk.fr"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a row of a failed import was kept: %v", err)
	}
	boom := errors.New("file changed")
	failing := func(yield func(storage.User, error) bool) {
		if yield(storage.User{ID: storage.NewID(), Email: "kept@bulk.fr", CreatedAt: now, UpdatedAt: now}, nil) {
			yield(storage.User{}, boom)
		}
	}
	if _, err := s.ImportUsers(ctx, failing); !errors.Is(err, boom) {
		t.Fatalf("sequence error: %v", err)
	}
	if _, err := s.GetUserByEmail(ctx, "kept@bulk.fr"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("a row before the sequence's error was kept")
	}

	got, err := s.ExistingEmails(ctx, []string{"AGENT0001@bulk.fr", "nobody@bulk.fr", " agent1000@BULK.fr"})
	if err != nil || len(got) != 2 {
		t.Fatalf("existing: %v, %v", got, err)
	}

	var events []storage.AuditEvent
	for i := range 1500 {
		events = append(events, storage.AuditEvent{Time: now.Add(time.Duration(i) * time.Second), Type: "login.success",
			Email: "Agent@Bulk.FR", Detail: fmt.Sprint(i)})
	}
	if err := s.AppendAuditBatch(ctx, events); err != nil {
		t.Fatal(err)
	}
	ev, err := s.ListAudit(ctx, storage.AuditFilter{Email: "agent@bulk.fr", Limit: 5000})
	if err != nil || len(ev) != 1500 || ev[0].Detail != "1499" || !ev[0].Time.Equal(now.Add(1499*time.Second)) {
		t.Fatalf("%d events (newest %+v), %v", len(ev), ev[0], err)
	}
}
