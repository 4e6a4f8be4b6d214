"""What the strategies share. None of these modules is a strategy, and no strategy imports another.

- `base`: the interface every strategy implements (`Strategy`, `StrategyResult`)
- `trained`: fine-tuning a sequence classifier on the shared loop (`TrainedStrategy`, `Built`)
- `bases`: the frozen bases an adapter sits on (full precision, 4-bit NF4, 8-bit LLM.int8)
- `adapters`: placing any peft adapter (`AdapterStrategy`, `place_adapter`)
- `lora_adapters`: LoRA's params, config and search space (`LoRAMethod`)
- `model_checks`: what a model's classification forward can take, checked before loading
- `prompts`, `prompt_params`, `label_scoring`, `label_words`: prompting a causal LM and scoring labels
  (zero-shot and instruct-ft)
- `served` and `served_classifier`, `served_features`, `served_prompted`, `served_setfit`: a trained result as
  served (`StrategyResult.served`: predict, save, merged) and `load_served`, which reads a saved folder back
- `soft_prompts`: prompt-tuning's padding hook on decoders (the strategy's, and set again on a loaded adapter)
"""
