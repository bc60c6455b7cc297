"""fijiport: train CARE and StarDist models in Python and ship them, verified, to Fiji, KNIME and
the BioImage Model Zoo.

The library is split by the steps of a user's journey: :mod:`fijiport.data` (prepare),
:mod:`fijiport.training`, :mod:`fijiport.qc`, :mod:`fijiport.export`, :mod:`fijiport.verify`
(validate, zoo-check), :mod:`fijiport.runtimes` and :mod:`fijiport.predict`, over the files handed
between them (:mod:`fijiport.artifacts`), the model kinds (:mod:`fijiport.kinds`) and reading anyone's
package (:mod:`fijiport.package`); docs/architecture.md draws the layers. Importing :mod:`fijiport`
is cheap: TensorFlow is imported only by the functions that need it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fijiport")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
