"""hrmkit: train, evaluate and use Hierarchical Reasoning Models (HRM) and Tiny Recursive Models (TRM)."""

__version__ = "0.1.0"


def load_checkpoint(path, dataset=None, device="cpu"):
    """Load an hrmkit or reference HRM/TRM checkpoint: returns ``(model, run_config)``."""
    from hrmkit.loading import load_checkpoint as _load

    return _load(path, dataset=dataset, device=device)


__all__ = ["load_checkpoint", "__version__"]
