package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// newFlagSet makes a flag set whose errors come back to run (which prints
// them on one line) and whose --help prints usage to stdout. Each
// subcommand makes its own, with only the flags it uses: a flag another
// subcommand takes is refused, not silently ignored.
func newFlagSet(name, usage string, stdout io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	configPath := fs.String("config", "", "YAML configuration file (default: the one IDP_CONFIG names, if set)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: idp %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	return fs, configPath
}

// parseFlags parses and rejects stray positional arguments. The flag
// package prints a wrong flag's error and the whole usage to the flag
// set's output: silenced while parsing, so that a wrong command line gives
// only run's one line on stderr; the usage goes to stdout for -h/--help.
func parseFlags(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(out)
	if err == flag.ErrHelp {
		fs.Usage()
		return err
	}
	if err != nil {
		return &usageError{fs.Name() + ": " + err.Error()}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

// decimalFlag is an integer flag read in base 10: flag.Int reads "010" as
// octal (8) and takes "0x10", which no administrator means.
type decimalFlag int

func (d *decimalFlag) String() string { return strconv.Itoa(int(*d)) }

func (d *decimalFlag) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return errors.New("not a whole number")
	}
	*d = decimalFlag(n)
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
