// Package migrations holds the schema of each engine as plain versioned SQL
// files (sqlite/NNNN_name.sql, postgres/NNNN_name.sql), embedded in the binary.
// Each engine's store applies them in order, each in a transaction, and
// records them in its schema_migrations table.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// Migration is one versioned SQL file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Engines this package has migrations for.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Load returns the engine's migrations in version order. Versions must be
// unique and start at 1 without gaps, so that a missing file is caught here
// rather than half-applied.
func Load(engine string) ([]Migration, error) {
	entries, err := fs.ReadDir(files, engine)
	if err != nil {
		return nil, fmt.Errorf("migrations: unknown engine %q: %w", engine, err)
	}
	var out []Migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		base := strings.TrimSuffix(e.Name(), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, convErr := strconv.Atoi(num)
		if !ok || convErr != nil || v <= 0 {
			return nil, fmt.Errorf("migrations: %s/%s: name must be NNNN_name.sql", engine, e.Name())
		}
		body, err := fs.ReadFile(files, path.Join(engine, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migrations: %s: expected version %d, found %d (%s)", engine, i+1, m.Version, m.Name)
		}
	}
	return out, nil
}

// Latest is the highest version the engine's files define.
func Latest(engine string) (int, error) {
	ms, err := Load(engine)
	if err != nil {
		return 0, err
	}
	return len(ms), nil
}
