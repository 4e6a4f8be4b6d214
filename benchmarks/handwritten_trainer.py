"""The minimal hand-written Hugging Face `Trainer` script in the style of the seed article
(../shared/seeds/000_97b91e8ba3a702e3.txt, "How to Finetune Llama 3 for Sequence Classification"):
pandas splits -> `datasets.Dataset`, inverse-frequency class weights, a `CustomTrainer` whose
`compute_loss` is a class-weighted cross-entropy, `DataCollatorWithPadding`, `eval_strategy="epoch"`,
`save_strategy="epoch"`, `load_best_model_at_end=True`, and the article's batched test loop
(`tokenizer(..., padding=True, truncation=True)` under `torch.no_grad`) before and after training.

`bench perf` runs it in its own process against the suite's run of the same strategy, on the same
data split (`bench.data.task.prepare(load_raw(...), per_class, seed)`), the same model files, tokenizer
max_length, hyperparameters, LoRA configuration, device, precision (fp32 unless --bf16: bf16 autocast
through the Trainer and around the test loop; weights loaded in --dtype, what trains kept fp32, as the
suite does) and thread count.

Where it departs from the article, on purpose and never to its disadvantage:
  * no 4-bit quantization / `prepare_model_for_kbit_training` for `--strategy lora` (the suite's
    `lora` is not quantized either; that function would also turn on gradient checkpointing);
  * no `add_prefix_space=True` on the tokenizer, so both sides see identical token ids;
  * `report_to="none"` (no experiment tracker installed here) and the suite's warmup ratio, so the
    learning-rate schedule is the same on both sides;
  * checkpoints go to a temporary folder that is deleted at the end (not timed separately: the
    article's Trainer writes one per epoch, and that is part of its cost).

Prints one JSON object (accuracy, balanced accuracy, baseline accuracy, phase times) on its last
stdout line and writes it to --output when given.

    python benchmarks/handwritten_trainer.py --strategy full-ft --model PATH --per-class 60,20,40
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time

T0 = time.perf_counter()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--strategy", choices=["full-ft", "lora"], required=True)
    p.add_argument("--model", required=True, help="a local model folder (the suite's resolved model path)")
    p.add_argument("--dataset", default="bbc-news")
    p.add_argument("--data-opt", action="append", default=[], help="NAME=VALUE, e.g. dir=DIR for ag_news")
    p.add_argument("--per-class", default="60,20,40", help="TRAIN,VAL,TEST rows per class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--eval-batch-size", type=int, default=8)
    p.add_argument("--test-batch-size", type=int, default=32, help="the article's test loop batch size")
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-ratio", type=float, default=0.0)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=8)
    p.add_argument("--lora-dropout", type=float, default=0.05)
    p.add_argument("--lora-targets", default="q_proj,k_proj,v_proj,o_proj")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: CPUs available)")
    p.add_argument("--bf16", action="store_true", help="bf16 mixed precision (only where native)")
    p.add_argument("--device", default="auto", help="auto (cuda where there is one), cpu or cuda")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "auto"], default="float32",
                   help="dtype the weights load in (auto: the checkpoint's own); what trains is kept fp32")
    p.add_argument("--output", default=None, help="write the result JSON here too")
    return p.parse_args(argv)


def load_splits(args):
    """The suite's own split (same rows, same labels), as the article's three DataFrames."""
    from bench.data.task import parse_per_class, prepare
    from bench.data.sources import DatasetOptions, load_raw
    from bench.running.config import parse_data_opts

    data = prepare(load_raw(args.dataset, DatasetOptions(source=parse_data_opts(args.data_opt))),
                   parse_per_class(args.per_class), args.seed)
    frames = {name: pd.DataFrame({"text": s.texts, "label": s.labels})
              for name, s in (("train", data.train), ("val", data.val), ("test", data.test))}
    return frames["train"], frames["val"], frames["test"], data.labels


def main(argv=None) -> dict:
    args = parse_args(argv)
    from bench.engine.trackers import cpu_threads

    torch.set_num_threads(args.threads or cpu_threads())
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    times = {}
    t = time.perf_counter()

    train_df, val_df, test_df, label_names = load_splits(args)
    from datasets import Dataset, DatasetDict

    dataset = DatasetDict({"train": Dataset.from_pandas(train_df), "val": Dataset.from_pandas(val_df),
                           "test": Dataset.from_pandas(test_df)})

    # class weights: inverse of the label proportions, normalized (the article's code)
    class_weights = (1 / train_df.label.value_counts(normalize=True).sort_index()).tolist()
    class_weights = torch.tensor(class_weights)
    class_weights = class_weights / class_weights.sum()

    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                              Trainer, TrainingArguments)

    torch.manual_seed(args.seed)  # the new head's initialization (the suite seeds the same way)
    # loaded straight onto the device (the untrained baseline below runs there, not on the CPU)
    model = AutoModelForSequenceClassification.from_pretrained(
        args.model, num_labels=len(label_names), dtype=args.dtype if args.dtype == "auto" else getattr(torch, args.dtype),
        **({"device_map": {"": device}} if device.startswith("cuda") else {}))
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    if tokenizer.pad_token is None:  # the article: pad with the eos token
        tokenizer.pad_token_id = tokenizer.eos_token_id
        tokenizer.pad_token = tokenizer.eos_token
    if args.strategy == "lora":
        from peft import LoraConfig, get_peft_model

        lora_config = LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha,
                                 target_modules=args.lora_targets.split(","), lora_dropout=args.lora_dropout,
                                 bias="none", task_type="SEQ_CLS")
        model = get_peft_model(model, lora_config)
    if args.bf16:  # as the suite: under autocast what trains is fp32 (peft copies the head in the base's dtype)
        for param in model.parameters():
            if param.requires_grad and param.dtype != torch.float32:
                param.data = param.data.float()
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.use_cache = False
    model.config.pretraining_tp = 1
    times["load"] = time.perf_counter() - t

    def generate_predictions(model, df):
        """The article's test loop: batches of 32 texts, tokenized with padding, no_grad, argmax."""
        sentences = df.text.tolist()
        batch_size = args.test_batch_size
        all_outputs = []
        for i in range(0, len(sentences), batch_size):
            batch_sentences = sentences[i:i + batch_size]
            inputs = tokenizer(batch_sentences, return_tensors="pt", padding=True, truncation=True,
                               max_length=args.max_length)
            inputs = {k: v.to(model.device) for k, v in inputs.items()}
            with torch.no_grad(), torch.autocast(model.device.type, torch.bfloat16, enabled=args.bf16):
                outputs = model(**inputs)
                all_outputs.append(outputs["logits"])
        final_outputs = torch.cat(all_outputs, dim=0)
        return final_outputs.argmax(axis=1).cpu().numpy()

    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    t = time.perf_counter()
    model.eval()
    baseline = generate_predictions(model, test_df)
    times["baseline_eval"] = time.perf_counter() - t

    t = time.perf_counter()

    def data_preprocesing(row):
        return tokenizer(row["text"], truncation=True, max_length=args.max_length)

    tokenized_data = dataset.map(data_preprocesing, batched=True, remove_columns=["text"])
    tokenized_data = tokenized_data.rename_column("label", "labels")
    tokenized_data.set_format("torch")
    collate_fn = DataCollatorWithPadding(tokenizer=tokenizer)
    times["tokenize"] = time.perf_counter() - t

    def compute_metrics(evaluations):
        predictions, labels = evaluations
        predictions = np.argmax(predictions, axis=1)
        return {"balanced_accuracy": balanced_accuracy_score(predictions, labels),
                "accuracy": accuracy_score(predictions, labels)}

    class CustomTrainer(Trainer):
        def __init__(self, *args, class_weights=None, **kwargs):
            super().__init__(*args, **kwargs)
            if class_weights is not None:
                self.class_weights = torch.tensor(class_weights, dtype=torch.float32).to(self.args.device)
            else:
                self.class_weights = None

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels").long()
            outputs = model(**inputs)
            logits = outputs.get("logits")
            if self.class_weights is not None:
                # fp32 logits: a bf16 model's logits against fp32 class weights fail ("expected
                # scalar type BFloat16 but found Float")
                loss = F.cross_entropy(logits.float(), labels, weight=self.class_weights)
            else:
                loss = F.cross_entropy(logits.float(), labels)
            return (loss, outputs) if return_outputs else loss

    out_dir = tempfile.mkdtemp(prefix="handwritten-trainer-")
    try:
        training_args = TrainingArguments(
            output_dir=out_dir,
            learning_rate=args.lr,
            per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=args.eval_batch_size,
            num_train_epochs=args.epochs,
            weight_decay=args.weight_decay,
            # the suite's warmup, in steps computed as bench.engine.training.fit does (transformers 5 takes a
            # ratio through warmup_steps too, but rounds it its own way)
            warmup_steps=int(args.warmup_ratio * args.epochs * math.ceil(len(train_df) / args.batch_size)),
            eval_strategy="epoch",
            save_strategy="epoch",
            load_best_model_at_end=True,
            seed=args.seed,
            bf16=args.bf16,
            use_cpu=device == "cpu",
            report_to="none",
            disable_tqdm=True,
        )
        trainer = CustomTrainer(
            model=model,
            args=training_args,
            train_dataset=tokenized_data["train"],
            eval_dataset=tokenized_data["val"],
            processing_class=tokenizer,
            data_collator=collate_fn,
            compute_metrics=compute_metrics,
            class_weights=class_weights,
        )
        t = time.perf_counter()
        train_result = trainer.train()
        times["train"] = time.perf_counter() - t  # training, per-epoch evaluation and checkpoints
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)

    t = time.perf_counter()
    model = trainer.model
    model.eval()
    preds = generate_predictions(model, test_df)
    times["eval"] = time.perf_counter() - t
    y = test_df.label.to_numpy()
    result = {
        "script": "handwritten_trainer", "strategy": args.strategy, "model": args.model,
        "accuracy": float(accuracy_score(y, preds)), "balanced_accuracy": float(balanced_accuracy_score(y, preds)),
        "baseline_accuracy": float(accuracy_score(y, baseline)),
        "train_loss": float(train_result.training_loss),
        "epochs": [{k: v for k, v in e.items() if k in ("epoch", "eval_loss", "eval_accuracy")}
                   for e in trainer.state.log_history if "eval_loss" in e],
        "n_train": len(train_df), "n_val": len(val_df), "n_test": len(test_df),
        "device": device, "dtype": args.dtype, "bf16": args.bf16,
        "threads": torch.get_num_threads(), "time_s": {k: round(v, 3) for k, v in times.items()},
        "wall_s_in_process": round(time.perf_counter() - T0, 3),
    }
    if args.output:
        with open(args.output, "w") as fh:
            json.dump(result, fh, indent=1)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
