package pgcluster

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
)

// ErrNoBinaries is returned (wrapped) by Start when the PostgreSQL server
// binaries cannot be found. Its message says how to install them.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, postgres) not found on PATH or in " +
	defaultBinDirGlob + "; install them (Debian/Ubuntu: apt-get install -y postgresql; " +
	"Fedora: dnf install -y postgresql-server; macOS: brew install postgresql@15)")

const defaultBinDirGlob = "/usr/lib/postgresql/*/bin"

// The binary lookup, replaceable by tests.
var (
	lookPath   = exec.LookPath
	binDirGlob = defaultBinDirGlob
)

// binaries are the absolute paths of the programs a cluster needs.
type binaries struct {
	initdb   string
	postgres string
}

// findBinaries looks for initdb and postgres on PATH, then in the newest
// /usr/lib/postgresql/<version>/bin (where Debian installs them, off PATH).
func findBinaries() (binaries, error) {
	initdb, err1 := lookPath("initdb")
	postgres, err2 := lookPath("postgres")
	if err1 == nil && err2 == nil {
		return binaries{initdb: initdb, postgres: postgres}, nil
	}
	dirs, _ := filepath.Glob(binDirGlob) // the pattern is well-formed
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, d := range dirs {
		b := binaries{initdb: filepath.Join(d, "initdb"), postgres: filepath.Join(d, "postgres")}
		if isExecutable(b.initdb) && isExecutable(b.postgres) {
			return b, nil
		}
	}
	return binaries{}, fmt.Errorf("pgcluster: %w", ErrNoBinaries)
}

// versionOf returns the major version in .../postgresql/<version>/bin, or 0.
func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExecutable(path string) bool {
	_, err := exec.LookPath(path) // with a slash, LookPath only checks the file
	return err == nil
}
