package redistest_test

import (
	"context"
	"testing"

	"github.com/paperroute/paperroute/platform/redistest"
)

func TestKillRestartKeepsAOFData(t *testing.T) {
	srv := redistest.Start(t, redistest.WithAppendFsync("always"))
	ctx := context.Background()
	c := srv.Client()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING succeeded after Kill")
	}
	srv.Restart()
	got, err := c.Get(ctx, "k").Result()
	if err != nil || got != "v" {
		t.Fatalf("GET k after restart = %q, %v; want v (appendfsync always keeps acknowledged writes)", got, err)
	}
}

func TestServersAreIsolated(t *testing.T) {
	a, b := redistest.Start(t), redistest.Start(t)
	ctx := context.Background()
	if a.Addr() == b.Addr() {
		t.Fatalf("both servers on %s", a.Addr())
	}
	if err := a.Client().Set(ctx, "only-a", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Client().Exists(ctx, "only-a").Result(); err != nil || n != 0 {
		t.Errorf("key written to a is visible in b: n=%d err=%v", n, err)
	}
}
