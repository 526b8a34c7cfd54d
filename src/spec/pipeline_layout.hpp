#pragma once
// Megatron-Core's pipeline_model_parallel_layout (docs/MOE.md §14.2): which layers each virtual
// pipeline stage holds, written as "Et|(tt|)*30mL": E the embedding, t a transformer layer, m a
// multi-token-prediction layer, L the loss; "|" ends a virtual stage; "x*N" and "(..)*N" repeat.
// Virtual stage v is chunk v / pp of pipeline stage v % pp, as Megatron orders them.
#include <string>
#include <vector>

namespace ob {

struct pipeline_layout {
  std::string text;                 // as given
  std::vector<std::string> stages;  // per virtual stage, the repeats unrolled: "Et", "tt", "mL"

  int count(std::size_t stage, char what) const;
  int count(char what) const;  // over every stage
};

// Unrolls the repeats and splits the stages; a config_error naming `where` for a character
// Megatron does not know, a repeat without its count, or a layout too long to be real.
pipeline_layout parse_pipeline_layout(const std::string& text, const std::string& where);

// Megatron's validate_layer_layout, and what the step planner runs (docs/MOE.md §14.2): pp x vp
// virtual stages; `layers` t's; `mtp_layers` m's, after every t and beside the loss; the
// embedding first in the first virtual stage, the loss last in the last. A config_error naming
// `where` and the rule otherwise.
void check_pipeline_layout(const pipeline_layout& l, int pp, int vp, int layers, int mtp_layers,
                           const std::string& where);

}  // namespace ob
