package config

import "strings"

// Problem is one thing wrong with the configuration.
type Problem struct {
	// Key is the dotted YAML key ("smtp.addr"); for an unknown environment
	// variable it is the variable's name, and it is empty for a problem with
	// the file as a whole.
	Key     string
	Message string
}

func (p Problem) String() string {
	if p.Key == "" {
		return p.Message
	}
	return p.Key + ": " + p.Message
}

// Error gathers every problem found, so that an operator fixes them in one
// go rather than one per restart.
type Error struct {
	Problems []Problem
}

// Error lists each problem as "key: why" on its own line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems collects Problems.
type problems []Problem

func (ps *problems) add(key, message string) {
	*ps = append(*ps, Problem{Key: key, Message: message})
}

// err is nil when nothing was found, so that callers can return it as is.
func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return &Error{Problems: ps}
}
