// Package deploy holds no code. Its tests check what the repository ships
// for running paperroute against the code and the docs:
//
//   - every environment variable the code reads is documented in
//     docs/configuration.md, and every documented one is read;
//   - every environment variable the Kubernetes manifests (deploy/k8s, each
//     overlay rendered with kustomize) and deploy/compose.yaml set is one the
//     program in that container reads;
//   - the Dockerfile copies files that exist and builds each target with
//     deploy/build;
//   - the Grafana dashboard is valid JSON and uses only catalogued metrics.
//
// deploy/check (run by `make check`) adds what needs built binaries and
// tools: static binaries, promtool check/test rules.
package deploy
