package main

import (
	"fmt"
	"runtime/debug"
)

// version prints what this binary was built from, for a bug report or a
// check that a rollout took: the module version (a tag when installed with
// go install, "(devel)" in a checkout), the commit when the build knew it,
// and the Go release.
func version(args []string, e *env) error {
	fs := e.newFlags("version", "version")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("version takes no arguments")
	}
	fmt.Fprintln(e.stdout, buildVersion())
	return nil
}

// buildVersion describes the build in one line.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "verifyd (no build information)"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", with uncommitted changes"
			}
		}
	}
	out := "verifyd " + bi.Main.Version
	if rev != "" {
		out += " (commit " + rev + modified + ")"
	}
	return out + " " + bi.GoVersion
}
