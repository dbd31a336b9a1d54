"""J&F evaluation that reproduces the official VOS evaluators exactly (davis2017-evaluation, MOSE-api MOSEv2
score.py, vos-benchmark 0.1.0), one decode and one pass per frame, cropped to objects, parallel over videos.

    from submission.jf import evaluate
    result = evaluate("DAVIS/Annotations/480p", "preds/", protocol="davis")
    print(result.summary()); result.write("eval_out/")

``FrameScorer`` scores label arrays in memory (e.g. an ensemble weight sweep), ``evaluate_arrays`` a whole set.
"""
from .errors import EvaluationError
from .evaluate import UNKNOWN_IDS, evaluate, evaluate_arrays
from .measures import FrameScorer, FrameScores
from .protocols import PROTOCOLS, normalize_protocols
from .tables import Result

__all__ = ["evaluate", "evaluate_arrays", "FrameScorer", "FrameScores", "Result", "EvaluationError",
           "PROTOCOLS", "UNKNOWN_IDS", "normalize_protocols"]
