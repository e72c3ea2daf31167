package redistest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/paperroute/paperroute/platform/redisclient"
	"github.com/paperroute/paperroute/platform/redistest"
)

// TestStartCluster checks that the cluster is a real one: keys spread over
// the masters, a multi-key command across slots is refused with CROSSSLOT,
// hash-tagged keys work together, and platform/redisclient reaches it with
// its redis+cluster:// URL.
func TestStartCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, err := redisclient.Open(ctx, c.URL())
	if err != nil {
		t.Fatalf("redisclient.Open(%s): %v", c.URL(), err)
	}
	defer client.Close()

	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		if err := client.Set(ctx, "k:"+k, k, 0).Err(); err != nil {
			t.Fatalf("SET k:%s: %v", k, err)
		}
	}
	holding := 0
	for _, n := range c.Nodes {
		if size, err := n.Client().DBSize(ctx).Result(); err != nil {
			t.Fatal(err)
		} else if size > 0 {
			holding++
		}
	}
	if holding < 2 {
		t.Errorf("keys landed on %d of 3 masters; want them spread", holding)
	}
	// A single node refuses keys of two slots in one command.
	n := c.Nodes[0].Client()
	if err := n.MSet(ctx, "x:a", 1, "x:b", 2).Err(); err == nil || !(strings.Contains(err.Error(), "CROSSSLOT") || strings.Contains(err.Error(), "MOVED")) {
		t.Errorf("MSET across slots on one node = %v, want CROSSSLOT or MOVED", err)
	}
	if err := client.MSet(ctx, "{t}:a", 1, "{t}:b", 2).Err(); err != nil {
		t.Errorf("MSET of one hash tag = %v, want OK", err)
	}
}

// TestClusterNodeRestart checks the helpers of a restart test: Owner finds
// the master of a key, WaitFailed sees the others agree that it failed
// while it is down, and after Restart (AOF, appendfsync always) the key
// is still there.
func TestClusterNodeRestart(t *testing.T) {
	c := redistest.StartCluster(t, 3, redistest.WithAppendFsync("always"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := c.Client()
	if err := client.Set(ctx, "restart:{k}", "kept", 0).Err(); err != nil {
		t.Fatal(err)
	}
	owner, err := c.Owner(ctx, "restart:{k}")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := owner.Client().Exists(ctx, "restart:{k}").Result(); err != nil || n != 1 {
		t.Fatalf("the owner %s does not hold the key: %d, %v", owner.Addr(), n, err)
	}
	owner.Kill()
	c.WaitFailed(owner)
	for _, n := range c.Nodes {
		if n == owner {
			continue
		}
		if err := n.Client().Get(ctx, "other").Err(); err == nil || !strings.Contains(err.Error(), "CLUSTERDOWN") {
			t.Errorf("GET on the surviving node %s = %v, want CLUSTERDOWN", n.Addr(), err)
		}
	}
	owner.Restart()
	c.WaitOK()
	if got, err := client.Get(ctx, "restart:{k}").Result(); err != nil || got != "kept" {
		t.Fatalf("after the restart GET = %q, %v; want kept", got, err)
	}
}
