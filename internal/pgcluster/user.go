package pgcluster

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// credentialFor returns the credential to run the PostgreSQL programs with:
// nil when the process is not root (they run as the current user), the
// RunAs user's otherwise.
func credentialFor(runAs string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(runAs)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: running as root, PostgreSQL must run as another user: %w "+
			"(create it, e.g. useradd --system %s, or set Config.RunAs)", err, runAs)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: uid of %s: %w", runAs, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: gid of %s: %w", runAs, err)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("pgcluster: groups of %s: %w", runAs, err)
	}
	for _, g := range gids {
		n, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("pgcluster: group %q of %s: %w", g, runAs, err)
		}
		cred.Groups = append(cred.Groups, uint32(n))
	}
	return cred, nil
}

// checkTraverse checks that the credential's user may search every directory
// above dir, without which initdb and postgres fail with misleading
// permission errors.
func checkTraverse(dir, name string, cred *syscall.Credential) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok && !canSearch(fi.Mode(), st.Uid, st.Gid, cred) {
			return fmt.Errorf("pgcluster: user %q cannot reach %s: %s is %v owned by uid %d gid %d; "+
				"put the cluster under a directory it can traverse (e.g. in /tmp) or allow it (chmod o+x %s)",
				name, dir, p, fi.Mode(), st.Uid, st.Gid, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// canSearch applies the owner/group/other execute bits of a directory to
// the credential.
func canSearch(mode fs.FileMode, uid, gid uint32, cred *syscall.Credential) bool {
	switch {
	case uid == cred.Uid:
		return mode&0o100 != 0
	case gid == cred.Gid || slices.Contains(cred.Groups, gid):
		return mode&0o010 != 0
	default:
		return mode&0o001 != 0
	}
}

// chownTree gives dir and everything in it to the credential's user.
func chownTree(dir string, cred *syscall.Credential) error {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == cred.Uid && st.Gid == cred.Gid {
			return nil
		}
		return os.Lchown(path, int(cred.Uid), int(cred.Gid))
	})
	if err != nil {
		return fmt.Errorf("pgcluster: giving %s to uid %d: %w", dir, cred.Uid, err)
	}
	return nil
}
