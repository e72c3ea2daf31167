// Package chaos holds the sender's chaos tests (issue #8): real sender
// processes (the test binary re-executed as a child running senderd.Run),
// killed with SIGKILL or stopped with SIGSTOP, a real redis-server, and a
// programmable SMTP relay that counts what it actually received per
// recipient. The package has no code of its own.
package chaos
