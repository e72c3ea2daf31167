package devmode

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockVarDir takes an exclusive lock on varDir so that two dev stacks never
// run a redis-server on the same data directory. The lock goes with the
// process, even if it is killed.
func lockVarDir(varDir string) (unlock func(), err error) {
	path := filepath.Join(varDir, ".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("devmode: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("devmode: %s is in use by another paperroute dev (stop it, or use -var with another directory)", varDir)
	}
	return func() { f.Close() }, nil
}
