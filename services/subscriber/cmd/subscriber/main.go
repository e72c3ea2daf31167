// Command subscriber runs paperroute's subscriber service: the gRPC API for
// sign-ups and subscriber lists, and the link pages. Configuration comes from
// the environment (see docs/configuration.md); the process stops gracefully
// on SIGINT or SIGTERM.
package main

import (
	"os"
	_ "time/tzdata" // subscribers' time zones load on any machine

	"github.com/paperroute/paperroute/platform/service"
	"github.com/paperroute/paperroute/services/subscriber/subscriberd"
)

func main() { os.Exit(service.Main("subscriber", subscriberd.Run)) }
