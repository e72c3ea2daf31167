// Package sample holds the bundled sample papers of the dev mode: a real
// Hugging Face daily papers API response (12 June 2026), loaded into the
// dev stack so the demo digest has content. Tests use it as a fixture too.
package sample

import _ "embed"

// Papers is the sample document, in the PAPER_FORMAT_HF_DAILY_JSON format.
//
//go:embed hf-daily-papers-2026-06-12.json
var Papers []byte

// File is where the sample lives in the repository, for the printed grpcurl
// commands.
const File = "cmd/paperroute/internal/devmode/sample/hf-daily-papers-2026-06-12.json"
