package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"io"
	"strings"
)

// readCSVHeader reads the header row of f, a CSV file an administrator
// exported from a spreadsheet, and returns the reader of the rows after it.
// Spreadsheets start UTF-8 files with a byte-order mark, which is skipped;
// French ones separate with semicolons (headerComma tells which from the
// raw first line). The header's cells are trimmed and lower-cased, as an
// administrator would read them. The reader reuses its records
// (ReuseRecord) and accepts any number of fields: each import checks its
// rows itself, to list every problem at once.
func readCSVHeader(f io.Reader) (*csv.Reader, []string, error) {
	br := bufio.NewReaderSize(f, 1<<16)
	if b, err := br.Peek(3); err == nil && string(b) == "\uFEFF" {
		_, _ = br.Discard(3)
	}
	// Peek fails short of a full buffer (a small file): what it has is
	// what it returns.
	first, _ := br.Peek(br.Size())
	if i := bytes.IndexByte(first, '\n'); i >= 0 {
		first = first[:i]
	}
	r := csv.NewReader(br)
	r.Comma, r.FieldsPerRecord, r.ReuseRecord = headerComma(first), -1, true
	header, err := r.Read()
	if err != nil {
		return nil, nil, err
	}
	// A copy: the reader reuses header's slice for the next rows.
	cells := make([]string, len(header))
	for i, h := range header {
		cells[i] = strings.ToLower(strings.TrimSpace(h))
	}
	return r, cells, nil
}

// headerComma is ';' when the header line separates its cells with
// semicolons and holds no comma, outside double quotes both: the header is
// then one cell for a ',' reader, and when its cells are quoted
// ("email";"name", PowerShell's Export-Csv -Delimiter ';', LibreOffice)
// not even valid CSV for it. Otherwise ','.
func headerComma(line []byte) rune {
	quoted, commas, semicolons := false, 0, 0
	for _, c := range line {
		switch {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == ',':
			commas++
		case c == ';':
			semicolons++
		}
	}
	if semicolons > 0 && commas == 0 {
		return ';'
	}
	return ','
}
