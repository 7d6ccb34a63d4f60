"""Shared helpers of the policy tests."""

import numpy as np


class OneMember:
    """The smallest ensemble the evaluator needs: one member scoring by length."""

    names = ["m0"]

    def score(self, prompts, responses):
        return np.array([[float(len(r)) for r in responses]])

    def standardize(self, raw):
        return raw
