# First import: sets OMP_NUM_THREADS to the core count before mxnet is imported (issue 15; lotr_gluon.runtime).
from . import runtime  # noqa: F401
