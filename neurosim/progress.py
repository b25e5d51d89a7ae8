"""Progress bars for long work (training, sweeps, depth scans)."""
from __future__ import annotations


def progress_bar(*args, **kwargs):
    """A tqdm progress bar: the notebook widget where ipywidgets is installed, else the text bar.

    ``tqdm.auto`` picks the widget in any Jupyter kernel and, without ipywidgets, warns
    (``TqdmWarning: IProgress not found``) in the first cell of every notebook; the text bar works
    everywhere, so it is used unless the widget can be drawn.
    """
    import importlib.util

    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm(*args, **kwargs)
