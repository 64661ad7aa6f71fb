"""Inference: the predictor (:mod:`.predictor`, one path for files and arrays), the sliding window with
segment-embedding reuse (:mod:`.sliding`) and batch prediction of files and folders (:mod:`.batch`)."""
