package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/config"
	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/passhash"
)

// `idp user import --file F.csv` loads agents' accounts in bulk: the
// administrators' way to bring existing accounts over (with their Argon2id
// hashes) and to seed large test databases. The file is read twice: once to
// validate every row (nothing is imported if any row is wrong, and every
// problem is listed with its line), once to stream the rows into one
// transaction, so memory does not grow with the file.

// importColumns are the CSV header's column names; password_hash is optional.
var importColumns = []string{"email", "name", "organisation", "password_hash"}

// importProblem is one wrong row.
type importProblem struct {
	line int
	msg  string
}

func (p importProblem) String() string { return fmt.Sprintf("line %d: %s", p.line, p.msg) }

// errImportRefused: the file has problems; they were listed on stdout.
var errImportRefused = errors.New("import refused")

// importRow is a validated row.
type importRow struct {
	line                      int
	email, name, organisation string
	passwordHash              string
}

func cmdUserImport(ctx context.Context, args, environ []string, stdout io.Writer) error {
	fs, configPath := newFlagSet("user import", "user import --file FILE.csv", stdout)
	file := fs.String("file", "", "CSV file with a header row: email,name,organisation[,password_hash]")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return &usageError{"user import: --file is required"}
	}
	return withStore(ctx, *configPath, environ, func(_ config.Config, s migratingStore) error {
		bulk, ok := s.(storage.BulkImporter)
		if !ok {
			return errors.New("user import: this database engine cannot import in bulk")
		}
		start := time.Now()
		n, withHash, err := importUsersFile(ctx, bulk, s, *file, time.Now(), stdout)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d agents imported from %s in %s (%d with a password hash; the others have no password yet: "+
			"\"idp user reset --email E\" mails one a provisional password)\n",
			n, *file, time.Since(start).Round(time.Millisecond), withHash)
		return nil
	})
}

// importUsersFile validates the whole file, then imports it in one
// transaction. Problems are listed on out, one a line, and the call returns
// errImportRefused with their count.
func importUsersFile(ctx context.Context, bulk storage.BulkImporter, store storage.Store, path string, now time.Time, out io.Writer) (imported, withHash int, err error) {
	lines := map[string]int{} // normalised e-mail → first line
	var problems []importProblem
	rows := 0
	for row, perr := range readImportFile(path) {
		if perr != nil {
			var p *importProblem
			if errors.As(perr, &p) {
				problems = append(problems, *p)
				continue
			}
			return 0, 0, perr
		}
		rows++
		if first, dup := lines[row.email]; dup {
			problems = append(problems, importProblem{row.line, fmt.Sprintf("e-mail %s already on line %d", row.email, first)})
			continue
		}
		// A copy: the row's strings share the whole line's memory.
		lines[strings.Clone(row.email)] = row.line
		if row.passwordHash != "" {
			withHash++
		}
	}
	emails := make([]string, 0, len(lines))
	for e := range lines {
		emails = append(emails, e)
	}
	existing, err := bulk.ExistingEmails(ctx, emails)
	if err != nil {
		return 0, 0, err
	}
	for _, e := range existing {
		problems = append(problems, importProblem{lines[e], fmt.Sprintf("an account with e-mail %s already exists", e)})
	}
	if rows == 0 && len(problems) == 0 {
		return 0, 0, fmt.Errorf("user import: %s has no rows after its header", path)
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b importProblem) int { return a.line - b.line })
		for _, p := range problems {
			fmt.Fprintln(out, p)
		}
		return 0, 0, fmt.Errorf("%w: %d problem(s) in %s (listed above); nothing imported", errImportRefused, len(problems), path)
	}

	users := func(yield func(storage.User, error) bool) {
		for row, err := range readImportFile(path) {
			if err != nil {
				// The file changed between the two readings.
				yield(storage.User{}, fmt.Errorf("user import: %s changed while importing: %w", path, err))
				return
			}
			u := storage.User{ID: storage.NewID(), Email: row.email, Name: row.name, Organisation: row.organisation,
				PasswordHash: row.passwordHash, CreatedAt: now, UpdatedAt: now}
			if !yield(u, nil) {
				return
			}
		}
	}
	imported, err = bulk.ImportUsers(ctx, users)
	if errors.Is(err, storage.ErrDuplicate) {
		return 0, 0, fmt.Errorf("user import: an account was created meanwhile with an e-mail of the file; nothing imported: %w", err)
	}
	if err != nil {
		return 0, 0, err
	}
	if err := store.AppendAudit(ctx, storage.AuditEvent{Time: now, Type: "admin.users_imported",
		ClientIP: adminMeta.ClientIP, UserAgent: adminMeta.UserAgent,
		Detail: fmt.Sprintf("%d accounts from %s", imported, path)}); err != nil {
		fmt.Fprintf(out, "warning: the import was not recorded in the audit trail: %v\n", err)
	}
	return imported, withHash, nil
}

// readImportFile yields the file's validated rows; a wrong row (a line
// that is not valid CSV included) is yielded as an *importProblem error and
// reading goes on; a file that cannot be read, or whose header is wrong, is
// yielded as another error and reading stops.
func readImportFile(path string) iter.Seq2[importRow, error] {
	return func(yield func(importRow, error) bool) {
		f, err := os.Open(path)
		if err != nil {
			yield(importRow{}, fmt.Errorf("user import: %w", err))
			return
		}
		defer f.Close()
		r, header, err := readCSVHeader(f)
		if err != nil {
			yield(importRow{}, fmt.Errorf("user import: %s: reading the header row: %w", path, err))
			return
		}
		col, err := importHeader(header)
		if err != nil {
			yield(importRow{}, fmt.Errorf("user import: %s: line 1: %w", path, err))
			return
		}
		width := len(header)
		for {
			rec, err := r.Read()
			if err == io.EOF {
				return
			}
			if err != nil {
				// A line that is not valid CSV (a bare quote in a name) is
				// that line's problem: the reader goes on at the next one,
				// and the other problems of the file are listed with it.
				if problem := csvProblem(err); problem != nil {
					if !yield(importRow{}, problem) {
						return
					}
					continue
				}
				yield(importRow{}, fmt.Errorf("user import: %s: %w", path, err))
				return
			}
			line, _ := r.FieldPos(0)
			row, problem := validateImportRow(line, rec, col, width)
			if problem != nil {
				if !yield(importRow{}, problem) {
					return
				}
				continue
			}
			if !yield(row, nil) {
				return
			}
		}
	}
}

// importHeader maps each known column to its index (-1 when absent); the
// header's cells are trimmed and lower-cased already (readCSVHeader).
func importHeader(header []string) (map[string]int, error) {
	col := map[string]int{}
	for _, c := range importColumns {
		col[c] = -1
	}
	for i, h := range header {
		idx, known := col[h]
		switch {
		case !known:
			return nil, fmt.Errorf("unknown column %q (the columns are %s)", h, strings.Join(importColumns, ","))
		case idx >= 0:
			return nil, fmt.Errorf("column %q appears twice", h)
		}
		col[h] = i
	}
	for _, c := range importColumns[:3] {
		if col[c] < 0 {
			return nil, fmt.Errorf("missing column %q (the header must be %s[,password_hash])", c, strings.Join(importColumns[:3], ","))
		}
	}
	return col, nil
}

// validateImportRow applies account creation's rules to one record.
func validateImportRow(line int, rec []string, col map[string]int, width int) (importRow, *importProblem) {
	// A PHC string holds two commas (m=…,t=…,p=…): when the hash is the
	// last column and was not quoted, its three pieces are put back together.
	if h := col["password_hash"]; h == width-1 && len(rec) == width+2 {
		rec = append(rec[:h:h], strings.Join(rec[h:], ","))
	}
	if len(rec) != width {
		return importRow{}, &importProblem{line, fmt.Sprintf("%d fields, the header has %d "+
			"(a value holding the separator must be in double quotes)", len(rec), width)}
	}
	get := func(c string) string {
		if i := col[c]; i >= 0 {
			return rec[i]
		}
		return ""
	}
	var msgs []string
	email, err := account.ValidateEmail(get("email"))
	if err != nil {
		msgs = append(msgs, err.Error())
	}
	name, err := account.ValidateText("name", get("name"), true)
	if err != nil {
		msgs = append(msgs, err.Error())
	}
	org, err := account.ValidateText("organisation", get("organisation"), false)
	if err != nil {
		msgs = append(msgs, err.Error())
	}
	hash := strings.TrimSpace(get("password_hash"))
	if hash != "" {
		if _, _, _, err := passhash.ParsePHC(hash); err != nil {
			msgs = append(msgs, "password_hash: not an Argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash): "+err.Error())
		}
	}
	if len(msgs) > 0 {
		return importRow{}, &importProblem{line, strings.Join(msgs, "; ")}
	}
	return importRow{line: line, email: email, name: name, organisation: org, passwordHash: hash}, nil
}

func (p *importProblem) Error() string { return p.String() }

// csvProblem is the problem of the record a csv.Reader refused (nil for an
// error that is not the file's content, which stops the reading): its line
// is the record's first.
func csvProblem(err error) *importProblem {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return nil
	}
	msg := "not valid CSV: " + pe.Err.Error()
	if errors.Is(pe.Err, csv.ErrBareQuote) || errors.Is(pe.Err, csv.ErrQuote) {
		msg += " (a value holding a double quote must be in double quotes, its quotes doubled: \"Jean \"\"Jojo\"\" Martin\")"
	}
	return &importProblem{pe.StartLine, msg}
}
