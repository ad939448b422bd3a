package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// newFlagSet makes a flag set whose errors come back to run (which prints
// them on one line) and whose --help prints usage to stdout.
func newFlagSet(name, usage string, stdout io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configPath := fs.String("config", "", "YAML configuration file (default: the one IDP_CONFIG names, if set)")
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: idp %s\n\nFlags:\n", usage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs, configPath
}

// parseFlags parses and rejects stray positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err // the flag package has printed the usage
		}
		return &usageError{fs.Name() + ": " + err.Error()}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

// listFlag collects a repeatable flag (--redirect-uri A --redirect-uri B).
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// subcommand splits "user add ..." into "add" and its arguments.
func subcommand(group string, args []string, stdout io.Writer, usage string) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, &usageError{fmt.Sprintf("%s: missing subcommand (see idp %s --help)", group, group)}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return "", nil, flag.ErrHelp
	}
	return args[0], args[1:], nil
}
