"""hrmkit: train, evaluate and use Hierarchical Reasoning Models (HRM) and Tiny Recursive Models (TRM)."""

__version__ = "0.1.0"


def load_checkpoint(path, dataset=None, device="cpu"):
    """Load an hrmkit or reference HRM/TRM checkpoint: returns ``(model, run_config)``, the model in eval
    mode on ``device``.

    ``path``: a run folder, a weights folder or its model.safetensors, an hrmkit .pt file, or a reference
    ``step_<N>`` file. ``dataset``: a puzzle dataset folder the model must be able to read (checked: a misfit
    is a one-line error). ``device``: ``cpu`` (default), ``auto``, ``cuda[:N]`` or ``mps``.
    More: ``help(hrmkit.loading.load_checkpoint)``.
    """
    from hrmkit.loading import load_checkpoint as _load

    return _load(path, dataset=dataset, device=device)


__all__ = ["load_checkpoint", "__version__"]
