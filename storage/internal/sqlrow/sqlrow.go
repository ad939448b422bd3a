// Package sqlrow holds what both SQL engines need to read a record from a
// query that joins it with others: its columns qualified by a table alias,
// and a row whose extra columns are scanned around the record's own, so that
// one scan function per record type serves every query that returns it.
package sqlrow

import "strings"

// Scanner is a row of database/sql or of pgx.
type Scanner interface {
	Scan(dest ...any) error
}

// Qualified qualifies each name of a comma-separated column list with alias
// (e.g. "r."), for queries that join tables sharing column names.
func Qualified(alias, columns string) string {
	parts := strings.Split(columns, ",")
	for i, c := range parts {
		parts[i] = alias + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// Prefix is row with dest scanned before the columns its caller asks for.
func Prefix(row Scanner, dest ...any) Scanner { return around{row: row, before: dest} }

// Suffix is row with dest scanned after the columns its caller asks for.
func Suffix(row Scanner, dest ...any) Scanner { return around{row: row, after: dest} }

// Then is row for the scan function of a record whose columns are followed,
// in the same row, by another record's: when that function scans its
// columns, next scans the rest with its own scan function. Each function
// keeps its own way of reading its record, and the row is read once.
func Then(row Scanner, next func(rest Scanner) error) Scanner { return then{row: row, next: next} }

type then struct {
	row  Scanner
	next func(Scanner) error
}

func (t then) Scan(dest ...any) error { return t.next(Prefix(t.row, dest...)) }

type around struct {
	row           Scanner
	before, after []any
}

func (a around) Scan(dest ...any) error {
	all := make([]any, 0, len(a.before)+len(dest)+len(a.after))
	all = append(append(append(all, a.before...), dest...), a.after...)
	return a.row.Scan(all...)
}
