package main

import (
	"bufio"
	"encoding/csv"
	"io"
	"os"
	"strings"
)

// readCSVHeader reads the header row of f, a CSV file an administrator
// exported from a spreadsheet, and returns the reader of the rows after it.
// Spreadsheets start UTF-8 files with a byte-order mark, which is skipped;
// French ones separate with semicolons, which a header that is one field
// holding semicolons gives away. The header's cells are trimmed and
// lower-cased, as an administrator would read them. The reader reuses its
// records (ReuseRecord) and accepts any number of fields: each import
// checks its rows itself, to list every problem at once.
func readCSVHeader(f *os.File) (*csv.Reader, []string, error) {
	br := bufio.NewReaderSize(f, 1<<16)
	r := csvReader(br, ',')
	header, err := r.Read()
	if err != nil {
		return nil, nil, err
	}
	if len(header) == 1 && strings.Contains(header[0], ";") {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, nil, err
		}
		br.Reset(f)
		r = csvReader(br, ';')
		if header, err = r.Read(); err != nil {
			return nil, nil, err
		}
	}
	// A copy: the reader reuses header's slice for the next rows.
	cells := make([]string, len(header))
	for i, h := range header {
		cells[i] = strings.ToLower(strings.TrimSpace(h))
	}
	return r, cells, nil
}

// csvReader reads br, past its byte-order mark if it has one.
func csvReader(br *bufio.Reader, comma rune) *csv.Reader {
	if b, err := br.Peek(3); err == nil && string(b) == "\uFEFF" {
		_, _ = br.Discard(3)
	}
	r := csv.NewReader(br)
	r.Comma, r.FieldsPerRecord, r.ReuseRecord = comma, -1, true
	return r
}
