package ranking

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Topic is one entry of the topic catalogue: readers pick topics by id; a
// paper matches a topic when it mentions one of its phrases.
type Topic struct {
	// ID is stable and short: "diffusion", "llm-reasoning".
	ID string `json:"id"`
	// Label is what readers see: "Diffusion models".
	Label string `json:"label"`
	// Phrases are the words or phrases that mean the topic, matched
	// case-insensitively, plurals folded ("diffusion model" matches
	// "Diffusion Models").
	Phrases []string `json:"phrases"`
}

// Catalogue is the list of topics, in display order.
type Catalogue struct {
	topics []Topic
	byID   map[string]int
}

// Bounds of a catalogue file.
const (
	maxTopics      = 200
	maxPhrases     = 50
	maxPhraseRunes = 80
	maxLabelRunes  = 80
)

var topicID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

// NewCatalogue checks topics and returns their catalogue.
func NewCatalogue(topics []Topic) (*Catalogue, error) {
	if len(topics) == 0 || len(topics) > maxTopics {
		return nil, fmt.Errorf("ranking: a catalogue needs 1..%d topics, not %d", maxTopics, len(topics))
	}
	c := &Catalogue{byID: map[string]int{}}
	for i, t := range topics {
		_, dup := c.byID[t.ID]
		switch {
		case !topicID.MatchString(t.ID):
			return nil, fmt.Errorf("ranking: topic %d: id %q must be 1-40 of a-z, 0-9 and -", i, t.ID)
		case dup:
			return nil, fmt.Errorf("ranking: topic %q is listed twice", t.ID)
		case strings.TrimSpace(t.Label) == "" || utf8.RuneCountInString(t.Label) > maxLabelRunes:
			return nil, fmt.Errorf("ranking: topic %q: label must be 1..%d characters", t.ID, maxLabelRunes)
		case len(t.Phrases) == 0 || len(t.Phrases) > maxPhrases:
			return nil, fmt.Errorf("ranking: topic %q: needs 1..%d phrases", t.ID, maxPhrases)
		}
		for _, p := range t.Phrases {
			if len(Tokens(p)) == 0 || utf8.RuneCountInString(p) > maxPhraseRunes {
				return nil, fmt.Errorf("ranking: topic %q: phrase %q must hold a word and be at most %d characters", t.ID, p, maxPhraseRunes)
			}
		}
		c.byID[t.ID] = i
		c.topics = append(c.topics, t)
	}
	return c, nil
}

// ParseCatalogue reads a catalogue file: a JSON array of topics
// ({"id", "label", "phrases"}).
func ParseCatalogue(data []byte) (*Catalogue, error) {
	var topics []Topic
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&topics); err != nil {
		return nil, fmt.Errorf("ranking: topic catalogue: %w", err)
	}
	return NewCatalogue(topics)
}

// Topics returns the topics in display order.
func (c *Catalogue) Topics() []Topic { return c.topics }

// Lookup returns the topic with id.
func (c *Catalogue) Lookup(id string) (Topic, bool) {
	i, ok := c.byID[id]
	if !ok {
		return Topic{}, false
	}
	return c.topics[i], true
}

// DefaultCatalogue returns the shipped catalogue of machine-learning topics.
func DefaultCatalogue() *Catalogue {
	c, err := NewCatalogue([]Topic{
		{"llm", "Large language models", []string{"large language model", "LLM", "language model", "GPT", "instruction tuning", "pretraining"}},
		{"reasoning", "Reasoning", []string{"reasoning", "chain of thought", "chain-of-thought", "math", "theorem proving", "test-time scaling"}},
		{"agents", "Agents and tool use", []string{"agent", "agentic", "tool use", "tool calling", "web navigation", "multi-agent"}},
		{"diffusion", "Diffusion models", []string{"diffusion model", "diffusion", "denoising", "score-based", "flow matching", "rectified flow"}},
		{"multimodal", "Multimodal and vision-language models", []string{"vision-language", "VLM", "multimodal", "multi-modal", "visual question answering", "MLLM"}},
		{"video", "Video generation and understanding", []string{"video generation", "video", "text-to-video", "video understanding"}},
		{"vision", "Computer vision and image generation", []string{"image generation", "text-to-image", "image editing", "image synthesis", "segmentation", "object detection", "computer vision"}},
		{"3d", "3D and scene reconstruction", []string{"3D", "gaussian splatting", "NeRF", "neural radiance field", "point cloud", "mesh", "scene reconstruction"}},
		{"robotics", "Robotics and embodied AI", []string{"robot", "robotics", "embodied", "manipulation", "vision-language-action", "VLA", "locomotion"}},
		{"rl", "Reinforcement learning", []string{"reinforcement learning", "RL", "RLHF", "reward model", "policy optimization", "GRPO", "PPO"}},
		{"efficiency", "Efficient training and inference", []string{"quantization", "pruning", "distillation", "efficient inference", "mixture of experts", "MoE", "sparse attention", "KV cache"}},
		{"code", "Code generation", []string{"code generation", "coding", "program synthesis", "software engineering", "code LLM"}},
		{"speech", "Speech and audio", []string{"speech", "audio", "text-to-speech", "TTS", "ASR", "speech recognition", "music generation"}},
		{"safety", "Safety, alignment and evaluation", []string{"alignment", "safety", "jailbreak", "red teaming", "hallucination", "benchmark", "evaluation"}},
		{"retrieval", "Retrieval and RAG", []string{"retrieval", "retrieval-augmented generation", "RAG", "embedding", "search", "reranking"}},
		{"science", "AI for science", []string{"protein", "molecule", "drug discovery", "materials", "weather", "biology", "chemistry"}},
	})
	if err != nil {
		panic(err) // the shipped catalogue is a constant; its test proves it valid
	}
	return c
}
