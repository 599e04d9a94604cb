"""A search from start to end: prepare → run trials → finish (:func:`run`), and the nightly
search built from the same steps (:func:`nightly`)."""

from search.flow._final_stage import DRIFT_NOTE, final_stage, measured_drift
from search.flow._finish import finish
from search.flow._nightly import REGRESSION_EXIT, Night, nightly
from search.flow._prepare import Prepared, dense_model_for, prepare
from search.flow._search import backend_of, run, run_and_finish

__all__ = ["DRIFT_NOTE", "Night", "Prepared", "REGRESSION_EXIT", "backend_of", "dense_model_for",
           "final_stage", "finish", "measured_drift", "nightly", "prepare", "run", "run_and_finish"]
