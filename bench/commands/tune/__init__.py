"""`bench tune`: an Optuna study over one strategy's search space, each trial an ordinary recorded run.

- The parent asks Optuna for a trial, merges the strategy's `search_space(trial)` over the
  experiment's params, and runs that as its own worker process through the launcher (`--launcher
  local`: a subprocess here; `ray`: a Ray task on a cluster node) evaluating on the validation split
  (the test split is never looked at during a search). It then tells Optuna the objective(s) read from
  the run's record; the trial's run_id is a trial user attr, the study name and trial number are in
  the record, so records and study can be joined.
- `--workers N`: N trial loops at once against the one study (threads here, each with its own
  trial); the study's storage must reach every worker, so across machines use PostgreSQL or MySQL.
- Pruning: the worker opens the same storage, finds its trial by number, reports each epoch's
  validation balanced accuracy and stops when the pruner says so (record status "pruned").
  Single-objective studies only: Optuna does not prune multi-objective ones.
- Storage: SQLite under the results folder by default, so a killed study resumes and its trial
  numbers continue; `--trials N` means N more trials in this invocation. Any Optuna storage URL works,
  and several `bench tune` processes may work on one study at once.
- A trial whose process was killed stays RUNNING. The parent beats a heartbeat while its trial
  runs; a RUNNING trial silent for GRACE_S is marked FAIL by the next process that asks for a trial.
  (Meanwhile it blocks nothing: TPE treats running trials as pending.)
- `--param` / config params are the base every trial starts from; a param the search space
  samples takes the sampled value (a note says so once).
- Trial 0 of a new study runs the starting parameters (defaults plus --param), so the best trial
  is never worse than the untuned run and the history shows what tuning bought.
- The TPE sampler is seeded from fresh entropy in every process: two processes with one seed would
  propose the same points. `--seed` is the data split and training seed of every trial.
- Optuna's public API only (study.ask/tell, the storage's public methods, distributions' fields).

Modules: study (objectives, open/resume, best trial), trials (one trial), output (printing), loop (the entry point).
"""

from bench.commands.tune.loop import base_spec, run_loops, run_tune, study_setup, user_params_of
from bench.commands.tune.output import rerun_command
from bench.commands.tune.study import (OBJECTIVES, PRIMARY, best_params_for, best_trial, enqueue_starting_point,
                                       load_existing_study, open_study, parse_objectives, tuned_params)
from bench.commands.tune.trials import Search, TrialResult, run_trial, tell
from bench.running.study_storage import default_storage, make_pruner, open_storage

__all__ = ["OBJECTIVES", "PRIMARY", "Search", "TrialResult", "base_spec", "best_params_for", "best_trial",
           "default_storage", "enqueue_starting_point", "load_existing_study", "make_pruner", "open_storage",
           "open_study", "parse_objectives", "rerun_command", "run_loops", "run_trial", "run_tune", "study_setup", "tell",
           "tuned_params", "user_params_of"]
