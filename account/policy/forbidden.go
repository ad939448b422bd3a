package policy

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// LoadForbidden reads a list of refused passwords: one a line, blank lines
// and lines starting with # ignored. Entries are stored lowercased and NFC,
// as Check looks them up. Surrounding spaces are dropped from each line (a
// list's trailing spaces are never intended).
func LoadForbidden(path string) (map[string]struct{}, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: forbidden passwords: %w", err)
	}
	defer f.Close()
	set := make(map[string]struct{})
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		set[foldForCompare(line)] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("policy: forbidden passwords %s: %w", path, err)
	}
	return set, nil
}
