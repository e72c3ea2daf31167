// Command digest runs the paperroute digest service: papers, ranking,
// rendering and digest runs. Configuration comes from the environment (see
// docs/configuration.md); the process stops gracefully on SIGINT or SIGTERM.
package main

import (
	"os"
	_ "time/tzdata" // subscribers' time zones load on any machine

	"github.com/paperroute/paperroute/platform/service"
	"github.com/paperroute/paperroute/services/digest/digestd"
)

func main() { os.Exit(service.Main("digest", digestd.Run)) }
