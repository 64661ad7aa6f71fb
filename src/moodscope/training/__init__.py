"""Training and evaluation: configs (:mod:`.config`), data and folds (:mod:`.data`), the LightningModule
(:mod:`.system`), one fold (:mod:`.fold`), whole experiments with sweeps (:mod:`.experiment`), result
tables (:mod:`.reports`), ``moodscope compare`` (:mod:`.compare`) and the classical reference
(:mod:`.classical`)."""
