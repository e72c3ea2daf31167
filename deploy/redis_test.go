package deploy

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRedisConf starts the installed redis-server with deploy/redis.conf
// (on a unix socket in a temporary directory instead of port 6379 and
// /data) and checks that it accepts the file and runs with the settings
// paperroute depends on.
func TestRedisConf(t *testing.T) {
	server, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server is not installed: %v", err)
		}
		t.Skip("redis-server not installed (apt-get install redis-server)")
	}
	conf, err := filepath.Abs("redis.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command(server, conf, "--port", "0", "--bind", "127.0.0.1", "--unixsocket", sock, "--dir", dir)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	var conn net.Conn
	deadline := time.Now().Add(10 * time.Second)
	for conn == nil {
		select {
		case <-exited:
			t.Fatalf("redis-server refused deploy/redis.conf (%v):\n%s", waitErr, logs.String())
		default:
		}
		if c, err := net.Dial("unix", sock); err == nil {
			conn = c
		} else if time.Now().After(deadline) {
			t.Fatalf("redis-server did not open %s within 10s:\n%s", sock, logs.String())
		} else {
			time.Sleep(20 * time.Millisecond) // polling for the socket, not a wait-then-assert
		}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	for name, want := range map[string]string{
		"appendonly":       "yes",
		"appendfsync":      "always",
		"maxmemory-policy": "noeviction",
	} {
		got, err := configGet(conn, r, name)
		if err != nil {
			t.Fatalf("CONFIG GET %s: %v", name, err)
		}
		if got != want {
			t.Errorf("redis.conf: %s = %q, want %q", name, got, want)
		}
	}
}

// configGet runs CONFIG GET name over RESP and returns the value.
func configGet(conn net.Conn, r *bufio.Reader, name string) (string, error) {
	if _, err := fmt.Fprintf(conn, "*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(name), name); err != nil {
		return "", err
	}
	var lines []string
	for len(lines) < 5 {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		lines = append(lines, strings.TrimRight(line, "\r\n"))
		if len(lines) == 1 && lines[0] != "*2" {
			return "", fmt.Errorf("unexpected reply %q", lines[0])
		}
	}
	return lines[4], nil
}
