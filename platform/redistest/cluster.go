package redistest

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of masters without replicas, on loopback
// ports, owned by one test.
type Cluster struct {
	t testing.TB
	// Nodes are the masters; Kill and Restart one to test fail-over of a
	// client (not of the cluster: there are no replicas to promote).
	Nodes []*Server
}

// StartCluster starts masters cluster-enabled redis-servers (at least 3),
// joins them with `redis-cli --cluster create` and waits until the cluster
// reports cluster_state:ok on every node. Each node runs with AOF, as
// Start's servers do, and with opts (e.g. WithAppendFsync("always"), so a
// node killed with SIGKILL comes back with every write it acknowledged).
// It needs redis-cli in PATH beside redis-server.
func StartCluster(t testing.TB, masters int, opts ...Option) *Cluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("redistest: a Redis Cluster needs at least 3 masters, not %d", masters)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redistest: redis-cli not found in PATH (apt-get install redis-tools): %v", err)
	}
	c := &Cluster{t: t}
	args := []string{"--cluster", "create"}
	for range masters {
		n := Start(t, append(opts[:len(opts):len(opts)], func(o *options) { o.clusterPort = true })...)
		c.Nodes = append(c.Nodes, n)
		args = append(args, n.Addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitOK()
	return c
}

// WaitOK waits until every node reports cluster_state:ok (after StartCluster,
// or after a node's Kill and Restart, while the others still count it
// failed), for at most 20s.
func (c *Cluster) WaitOK() {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range c.Nodes {
		for {
			info, err := nodeClusterInfo(n)
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("redistest: node %s not in cluster_state:ok within 20s (%v):\n%s", n.Addr(), err, info)
			}
			time.Sleep(50 * time.Millisecond) // polling for the cluster to settle
		}
	}
}

// WaitFailed waits until every node but down reports cluster_state:fail,
// for at most 20s: they have agreed that down (killed) failed, and, since
// no replica can take its slots over, refuse every command with
// CLUSTERDOWN (cluster-require-full-coverage, the default).
func (c *Cluster) WaitFailed(down *Server) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range c.Nodes {
		if n == down {
			continue
		}
		for {
			info, err := nodeClusterInfo(n)
			if err == nil && strings.Contains(info, "cluster_state:fail") {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("redistest: node %s does not report cluster_state:fail within 20s (%v):\n%s", n.Addr(), err, info)
			}
			time.Sleep(50 * time.Millisecond) // polling for the failure to be agreed
		}
	}
}

// Owner returns the master that holds key's slot.
func (c *Cluster) Owner(ctx context.Context, key string) (*Server, error) {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer cc.Close()
	master, err := cc.MasterForKey(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("redistest: master for %q: %w", key, err)
	}
	for _, n := range c.Nodes {
		if master.Options().Addr == n.Addr() {
			return n, nil
		}
	}
	return nil, fmt.Errorf("redistest: key %q is on %s, not one of the cluster's nodes", key, master.Options().Addr)
}

func nodeClusterInfo(n *Server) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: n.Addr(), MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.ClusterInfo(ctx).Result()
}

// URL is the cluster's URL in platform/redisclient's form:
// redis+cluster://first?addr=second&addr=….
func (c *Cluster) URL() string {
	q := url.Values{}
	for _, n := range c.Nodes[1:] {
		q.Add("addr", n.Addr())
	}
	return fmt.Sprintf("redis+cluster://%s?%s", c.Nodes[0].Addr(), q.Encode())
}

// Client returns a cluster client, closed when the test ends.
func (c *Cluster) Client() *redis.ClusterClient {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	c.t.Cleanup(func() { _ = cc.Close() })
	return cc
}
