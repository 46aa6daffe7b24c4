"""The code-generation family: MBPP / HumanEval data and prompts, the sandbox, pass@k.

    data.py              MBPP and HumanEval tasks, prompts and test programs
    corpus.py            `hrm prepare mbpp`: a seq2seq corpus from MBPP
    sandbox.py           running one untrusted program in its own process and scoring it: limits, verdicts
    sandbox_backends.py  the backends: bubblewrap, an rlimited subprocess, docker, off
    sandbox_choice.py    `make_sandbox`: the backend asked for, or the strongest that works here
    sandbox_runner.py    the trusted start of every sandboxed program (passed as text, never imported)
    passk.py             the unbiased pass@k estimator
    evaluate.py          sample, run, score: `hrm eval code`
    view.py              the viewer's code-evaluation page

Dependency rule: this package imports `hrmkit.model`, `hrmkit.train`, `hrmkit.viz` and the shared
modules, and `hrmkit.lm` (it samples from an HRM-LM and trains on its corpus format), never
`hrmkit.puzzles`. tests/test_layout.py checks it.
"""
