"""The e2e modules here run on a devstack of their own each (module-scoped ``stack``, ``info``
and ``events``, which stand in for the session's): the API fuzzers and the batches, the two
heaviest. Marked ``own_devstack``, ``make test`` runs them in the lane that is not the e2e
run's, after that lane's other tests, so their ~4.5 minutes are off the e2e run's path (the
longer of the two lanes). The stack has the e2e settings and no state file: the session's stack
keeps ``.devstack/stack.json``, where ``imagegw`` and ``make`` look for it."""

from __future__ import annotations

from tests.e2e.support import stack_fixtures

stack, info, events = stack_fixtures("module", state_file=None)
